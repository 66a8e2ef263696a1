// The strict JSON check on the kinds of field the service's own requests do
// not have (maps, Timestamp, wrappers, Value, bytes, unsigned and float
// numbers, recursion), over a message built for the purpose. Every case is
// also given to protobuf-es's fromJson: the check must refuse exactly what
// fromJson refuses (it only names the fields), so that nothing it passes fails
// later in Connect's own parse, and nothing valid is refused.
import { create, createFileRegistry, fromJson, type DescMessage, type JsonObject, type MessageInitShape } from '@bufbuild/protobuf';
import {
  FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
} from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { strictJsonViolations } from '../../../src/transport/messages/strict-json.ts';

type FieldInit = MessageInitShape<typeof FieldDescriptorProtoSchema>;

function field(name: string, number: number, type: Type, extra: FieldInit = {}): FieldInit {
  return { name, number, type, label: Label.OPTIONAL, jsonName: name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()), ...extra };
}

/** test.Probe, as protoc would describe it. */
const Probe: DescMessage = (() => {
  const file = create(FileDescriptorProtoSchema, {
    name: 'test/probe.proto',
    package: 'test',
    syntax: 'proto3',
    dependency: ['google/protobuf/timestamp.proto', 'google/protobuf/wrappers.proto', 'google/protobuf/struct.proto'],
    messageType: [
      {
        name: 'Probe',
        field: [
          field('counts', 1, Type.MESSAGE, { label: Label.REPEATED, typeName: '.test.Probe.CountsEntry' }),
          field('kinds', 2, Type.MESSAGE, { label: Label.REPEATED, typeName: '.test.Probe.KindsEntry' }),
          field('at', 3, Type.MESSAGE, { typeName: '.google.protobuf.Timestamp' }),
          field('ats', 4, Type.MESSAGE, { label: Label.REPEATED, typeName: '.google.protobuf.Timestamp' }),
          field('limit', 5, Type.MESSAGE, { typeName: '.google.protobuf.Int32Value' }),
          field('any_json', 6, Type.MESSAGE, { typeName: '.google.protobuf.Value' }),
          field('kind_list', 7, Type.ENUM, { label: Label.REPEATED, typeName: '.test.Probe.Kind' }),
          field('big', 8, Type.UINT64),
          field('blob', 9, Type.BYTES),
          field('ratio', 10, Type.FLOAT),
          field('child', 11, Type.MESSAGE, { typeName: '.test.Probe' }),
          field('values', 12, Type.MESSAGE, { label: Label.REPEATED, typeName: '.google.protobuf.Value' }),
        ],
        nestedType: [
          { name: 'CountsEntry', options: { mapEntry: true }, field: [field('key', 1, Type.STRING), field('value', 2, Type.INT32)] },
          { name: 'KindsEntry', options: { mapEntry: true }, field: [field('key', 1, Type.INT64), field('value', 2, Type.ENUM, { typeName: '.test.Probe.Kind' })] },
        ],
        enumType: [{ name: 'Kind', value: [{ name: 'KIND_UNSPECIFIED', number: 0 }, { name: 'KIND_A', number: 1 }] }],
      },
    ],
  });
  const dependencies = [file_google_protobuf_timestamp, file_google_protobuf_wrappers, file_google_protobuf_struct];
  return createFileRegistry(file, (name) => dependencies.find((d) => d.name === name.replace(/\.proto$/, ''))).getMessage('test.Probe')!;
})();

function fromJsonAccepts(json: JsonObject): boolean {
  try {
    fromJson(Probe, json);
    return true;
  } catch {
    return false;
  }
}

describe('strictJsonViolations', () => {
  it.each<[string, JsonObject]>([
    ['maps with string and int64 keys', { counts: { a: 1, b: '2' }, kinds: { '12': 'KIND_A', '-3': 1 } }],
    ['Timestamp strings, alone and in a list', { at: '2024-01-31T09:30:00.5Z', ats: ['2024-01-31T09:30:00+02:00'] }],
    ['a wrapper as its bare value, null for unset', { limit: 5, at: null }],
    ['google.protobuf.Value: any JSON, null too, in a list as well', { anyJson: { a: [1, 'x', null] }, values: [null, 1] }],
    ['enum names and numbers in a list', { kind_list: ['KIND_A', 1, 0] }],
    ['the largest uint64 as a string, base64 bytes, a float', { big: '18446744073709551615', blob: 'AQID', ratio: 1.5 }],
    ['a nested message of the same type, by proto or JSON name', { child: { child: { kindList: [] } }, any_json: 'x' }],
  ])('accepts %s, as fromJson does', (_, json) => {
    expect(strictJsonViolations(Probe, json)).toEqual([]);
    expect(fromJsonAccepts(json)).toBe(true);
  });

  it.each<[string, JsonObject, string[]]>([
    ['a map value of the wrong type, an unknown enum name as a map value', { counts: { a: 'x' }, kinds: { '1': 'KIND_B' } }, ['counts[a]', 'kinds[1]']],
    ['a map key that is not an integer', { kinds: { one: 'KIND_A' } }, ['kinds[one]']],
    ['a Timestamp that is not RFC 3339, null in a list of them', { at: 'yesterday', ats: [null] }, ['at', 'ats[0]']],
    ['a wrapper given as an object', { limit: { value: 5 } }, ['limit']],
    ['an unknown enum name in a list', { kind_list: ['KIND_A', 'KIND_B'] }, ['kind_list[1]']],
    ['a negative uint64, bytes that are not base64, a float out of range', { big: -1, blob: '***', ratio: 1e40 }, ['big', 'blob', 'ratio']],
    ['an unknown field two messages down', { child: { child: { nope: 1 } } }, ['child.child.nope']],
    ['a list given as a single value, a map given as a list', { kind_list: 'KIND_A', counts: [] }, ['kind_list', 'counts']],
  ])('refuses %s, naming each, as fromJson refuses it', (_, json, fields) => {
    const violations = strictJsonViolations(Probe, json);
    expect(violations.map((v) => v.field)).toEqual(fields);
    for (const violation of violations) expect(violation.description).not.toMatch(/[:;,]/);
    expect(fromJsonAccepts(json)).toBe(false);
  });

  it('refuses a message nested deeper than protobuf-es reads, as fromJson does', () => {
    let json: JsonObject = {};
    for (let depth = 0; depth < 150; depth++) json = { child: json };
    const violations = strictJsonViolations(Probe, json);
    expect(violations).toHaveLength(1);
    expect(violations[0]!.field).toBe(Array.from({ length: 100 }, () => 'child').join('.'));
    expect(fromJsonAccepts(json)).toBe(false);
  });
});
