# Lists operators, then decodes the BadRequest of a page_size over the limit
# with the standard google/rpc files (googleapis-common-protos-types), loaded
# next to the generated crm/v1 ones.
$LOAD_PATH.unshift(__dir__)
require 'grpc'
require 'google/protobuf/well_known_types'
require 'google/rpc/error_details_pb'
require 'crm/v1/query_services_pb'

query = Crm::V1::QueryService::Stub.new(ARGV[0], :this_channel_is_insecure)
puts "operator #{query.list_operators(Crm::V1::ListOperatorsRequest.new).operators[0].name}"
begin
  query.list_operators(Crm::V1::ListOperatorsRequest.new(page_size: 1000))
rescue GRPC::InvalidArgument => e
  GRPC::GoogleRpcStatusUtils.extract_google_rpc_status(e.to_status).details.each do |detail|
    bad = detail.unpack(Google::Rpc::BadRequest)
    puts "bad field #{bad.field_violations[0].field}" if bad
  end
end
