// Server reflection (https://github.com/grpc/grpc/blob/master/doc/server-reflection.md),
// v1 and v1alpha, so grpcurl and buf curl work with no .proto files at hand.
// No npm package serves it for Connect: this answers from the descriptors that
// protobuf-es embeds in the generated code.
import { toBinary, type DescEnum, type DescExtension, type DescFile, type DescMessage, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code, type ServiceImpl } from '@connectrpc/connect';
import { ServerReflection, type ServerReflectionRequest } from '../../../gen/grpc/reflection/v1/reflection_pb.js';
import {
  ServerReflection as ServerReflectionV1alpha,
  type ServerReflectionRequest as ServerReflectionRequestV1alpha,
} from '../../../gen/grpc/reflection/v1alpha/reflection_pb.js';

/** v1alpha is v1 under another package, message for message and field for field. */
type Request = ServerReflectionRequest | ServerReflectionRequestV1alpha;

type Answer =
  | { case: 'fileDescriptorResponse'; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: 'allExtensionNumbersResponse'; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: 'listServicesResponse'; value: { service: { name: string }[] } }
  | { case: 'errorResponse'; value: { errorCode: Code; errorMessage: string } };

/**
 * Both reflection services over `services` (which should include the reflection
 * services themselves) and `extraFiles`, e.g. the types of error details.
 */
export function reflectionServices(
  services: readonly DescService[],
  extraFiles: readonly DescFile[] = [],
): { v1: ServiceImpl<typeof ServerReflection>; v1alpha: ServiceImpl<typeof ServerReflectionV1alpha> } {
  const index = new DescriptorIndex(services, extraFiles);
  return {
    v1: { serverReflectionInfo: (requests) => answerEach(index, requests) },
    v1alpha: { serverReflectionInfo: (requests) => answerEach(index, requests) },
  };
}

async function* answerEach<R extends Request>(index: DescriptorIndex, requests: AsyncIterable<R>) {
  for await (const request of requests) {
    yield { validHost: request.host, originalRequest: request, messageResponse: index.answer(request.messageRequest) };
  }
}

/** Files by import path and symbols by full name, over the files the services need. */
class DescriptorIndex {
  readonly #services: string[];
  /** Keyed by `file.proto.name`, the import path: `file.name` lacks the `.proto`. */
  readonly #files = new Map<string, DescFile>();
  /** `file.proto` is the FileDescriptorProto protoc produced, as embedded in the generated code. */
  readonly #serialized = new Map<DescFile, Uint8Array>();
  readonly #symbols = new Map<string, DescFile>();
  readonly #messages = new Set<string>();
  /** Extendee full name -> extension number -> file declaring the extension. */
  readonly #extensions = new Map<string, Map<number, DescFile>>();

  constructor(services: readonly DescService[], extraFiles: readonly DescFile[]) {
    this.#services = services.map((service) => service.typeName);
    for (const file of [...services.map((service) => service.file), ...extraFiles]) this.#addFile(file);
  }

  answer(request: Request['messageRequest']): Answer {
    switch (request.case) {
      case 'listServices':
        return { case: 'listServicesResponse', value: { service: this.#services.map((name) => ({ name })) } };
      case 'fileByFilename':
        return this.#fileWithImports(this.#files.get(request.value), `file ${request.value}`);
      case 'fileContainingSymbol':
        return this.#fileWithImports(this.#symbols.get(request.value), `symbol ${request.value}`);
      case 'fileContainingExtension': {
        const { containingType, extensionNumber } = request.value;
        const file = this.#extensions.get(containingType)?.get(extensionNumber);
        return this.#fileWithImports(file, `extension ${extensionNumber} of ${containingType}`);
      }
      case 'allExtensionNumbersOfType': {
        const type = request.value;
        if (!this.#messages.has(type)) return error(Code.NotFound, `message type ${type} not found`);
        const numbers = [...(this.#extensions.get(type)?.keys() ?? [])];
        return { case: 'allExtensionNumbersResponse', value: { baseTypeName: type, extensionNumber: numbers } };
      }
      default:
        return error(Code.InvalidArgument, 'the request sets none of message_request');
    }
  }

  /** The file first, then everything it imports, transitively: a client needs them all to use it. */
  #fileWithImports(file: DescFile | undefined, what: string): Answer {
    if (file === undefined) return error(Code.NotFound, `${what} not found`);
    const files = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (files.has(f)) return;
      files.add(f);
      f.dependencies.forEach(visit);
    };
    visit(file);
    return { case: 'fileDescriptorResponse', value: { fileDescriptorProto: [...files].map((f) => this.#serialized.get(f)!) } };
  }

  #addFile(file: DescFile): void {
    if (this.#files.has(file.proto.name)) return;
    this.#files.set(file.proto.name, file);
    this.#serialized.set(file, toBinary(FileDescriptorProtoSchema, file.proto));
    for (const service of file.services) {
      this.#symbols.set(service.typeName, file);
      for (const method of service.methods) this.#symbols.set(`${service.typeName}.${method.name}`, file);
    }
    file.messages.forEach((message) => this.#addMessage(message));
    file.enums.forEach((enumeration) => this.#addEnum(enumeration));
    file.extensions.forEach((extension) => this.#addExtension(extension));
    file.dependencies.forEach((dependency) => this.#addFile(dependency));
  }

  #addMessage(message: DescMessage): void {
    this.#symbols.set(message.typeName, message.file);
    this.#messages.add(message.typeName);
    for (const member of [...message.fields, ...message.oneofs]) this.#symbols.set(`${message.typeName}.${member.name}`, message.file);
    message.nestedMessages.forEach((nested) => this.#addMessage(nested));
    message.nestedEnums.forEach((nested) => this.#addEnum(nested));
    message.nestedExtensions.forEach((nested) => this.#addExtension(nested));
  }

  #addEnum(enumeration: DescEnum): void {
    this.#symbols.set(enumeration.typeName, enumeration.file);
    // Enum values are siblings of their enum in protobuf's scoping (C++ rules).
    const scope = enumeration.parent?.typeName ?? enumeration.file.proto.package;
    for (const value of enumeration.values) this.#symbols.set(scope ? `${scope}.${value.name}` : value.name, enumeration.file);
  }

  #addExtension(extension: DescExtension): void {
    this.#symbols.set(extension.typeName, extension.file);
    const numbers = this.#extensions.get(extension.extendee.typeName) ?? new Map<number, DescFile>();
    numbers.set(extension.number, extension.file);
    this.#extensions.set(extension.extendee.typeName, numbers);
  }
}

function error(code: Code, message: string): Answer {
  return { case: 'errorResponse', value: { errorCode: code, errorMessage: message } };
}
