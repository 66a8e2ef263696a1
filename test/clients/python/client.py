# Lists operators, then decodes the BadRequest of a page_size over the limit
# with the google.rpc modules (googleapis-common-protos).
import sys

import grpc
from crm.v1 import query_pb2, query_pb2_grpc
from google.rpc import error_details_pb2, status_pb2

with grpc.insecure_channel(sys.argv[1]) as channel:
    query = query_pb2_grpc.QueryServiceStub(channel)
    print("operator", query.ListOperators(query_pb2.ListOperatorsRequest()).operators[0].name)
    try:
        query.ListOperators(query_pb2.ListOperatorsRequest(page_size=1000))
    except grpc.RpcError as error:
        trailers = dict(error.trailing_metadata())
        for detail in status_pb2.Status.FromString(trailers["grpc-status-details-bin"]).details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                print("bad field", bad.field_violations[0].field)
