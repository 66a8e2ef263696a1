// Lists operators, then decodes the BadRequest of a page_size over the limit
// with the standard com.google.rpc classes (proto-google-common-protos).
import com.crmdistributor.crm.v1.ListOperatorsRequest;
import com.crmdistributor.crm.v1.QueryServiceGrpc;
import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;

public final class CrmClient {
  public static void main(String[] args) throws Exception {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(args[0]).usePlaintext().build();
    try {
      QueryServiceGrpc.QueryServiceBlockingStub query = QueryServiceGrpc.newBlockingStub(channel);
      System.out.println("operator " + query.listOperators(ListOperatorsRequest.getDefaultInstance()).getOperators(0).getName());
      try {
        query.listOperators(ListOperatorsRequest.newBuilder().setPageSize(1000).build());
      } catch (StatusRuntimeException e) {
        for (Any detail : StatusProto.fromThrowable(e).getDetailsList()) {
          if (detail.is(BadRequest.class)) System.out.println("bad field " + detail.unpack(BadRequest.class).getFieldViolations(0).getField());
        }
      }
    } finally {
      channel.shutdownNow();
    }
  }
}
