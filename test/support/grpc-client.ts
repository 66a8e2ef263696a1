// A typed gRPC client over @grpc/grpc-js, an implementation independent of the
// server's Connect stack; messages are (de)serialised with the generated schemas.
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { AdminService } from '../../gen/crm/v1/admin_pb.js';
import { DistributionService } from '../../gen/crm/v1/distribution_pb.js';
import { QueryService } from '../../gen/crm/v1/query_pb.js';
import { Health } from '../../gen/grpc/health/v1/health_pb.js';

/** `options.deadline`: a real deadline, sent as grpc-timeout and enforced by grpc-js as well. */
type Unary<I extends DescMessage, O extends DescMessage> = (request: MessageInitShape<I>, metadata?: grpc.Metadata, options?: grpc.CallOptions) => Promise<MessageShape<O>>;
type ServerStream<I extends DescMessage, O extends DescMessage> = (request: MessageInitShape<I>, metadata?: grpc.Metadata) => grpc.ClientReadableStream<MessageShape<O>>;
type BidiStream<I extends DescMessage, O extends DescMessage> = (metadata?: grpc.Metadata) => grpc.ClientDuplexStream<MessageInitShape<I>, MessageShape<O>>;

export type GrpcClient<S extends DescService> = {
  [K in keyof S['method']]: S['method'][K] extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? Unary<I, O>
    : S['method'][K] extends { methodKind: 'server_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? ServerStream<I, O>
      : S['method'][K] extends { methodKind: 'bidi_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
        ? BidiStream<I, O>
        : never;
} & { close(): void };

/** `credentials`: e.g. grpc.credentials.createSsl(ca) for a server with TLS; cleartext by default. */
export function grpcClient<S extends DescService>(
  service: S,
  address: string,
  defaults: grpc.Metadata = new grpc.Metadata(),
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): GrpcClient<S> {
  const client = new grpc.Client(address, credentials);
  const methods: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods as DescMethod[]) {
    const path = `/${service.typeName}/${method.name}`;
    const serialize = (value: MessageInitShape<DescMessage>) => Buffer.from(toBinary(method.input, create(method.input, value)));
    const deserialize = (bytes: Buffer) => fromBinary(method.output, bytes);
    const meta = (metadata?: grpc.Metadata) => {
      const merged = defaults.clone();
      if (metadata) merged.merge(metadata);
      return merged;
    };
    if (method.methodKind === 'bidi_streaming') {
      methods[method.localName] = (metadata?: grpc.Metadata) => client.makeBidiStreamRequest(path, serialize, deserialize, meta(metadata));
      continue;
    }
    methods[method.localName] = method.methodKind === 'server_streaming'
      ? (request: MessageInitShape<DescMessage>, metadata?: grpc.Metadata) =>
          client.makeServerStreamRequest(path, serialize, deserialize, request, meta(metadata))
      : (request: MessageInitShape<DescMessage>, metadata?: grpc.Metadata, options: grpc.CallOptions = {}) =>
          new Promise((resolve, reject) => {
            client.makeUnaryRequest(path, serialize, deserialize, request, meta(metadata), options, (error, response) => {
              if (error) reject(error);
              else resolve(response);
            });
          });
  }
  return methods as GrpcClient<S>;
}

/** A client for each service a test talks to, on one address, closed together. */
export function serviceClients(address: string, defaults?: grpc.Metadata) {
  const clients = {
    admin: grpcClient(AdminService, address, defaults),
    distribution: grpcClient(DistributionService, address, defaults),
    query: grpcClient(QueryService, address, defaults),
    health: grpcClient(Health, address, defaults),
  };
  return { ...clients, close: () => Object.values(clients).forEach((client) => client.close()) };
}

export type ServiceClients = ReturnType<typeof serviceClients>;
