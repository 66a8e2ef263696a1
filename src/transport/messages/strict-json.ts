// Strict JSON requests. Connect reads JSON the lenient way: a field it does not
// know (`"actve": false`) and an enum name it does not know (the short
// "SMOOTH_WEIGHTED_ROUND_ROBIN") are dropped, so the call goes on with the
// field unset. This checks a parsed JSON request against its message
// descriptor first and names every mistake, as field violations with proto
// paths ("lead.external_idd", "operators[1].weight"): a field the message does
// not have, an enum value that is not one of its names or an integer, a value
// of the wrong JSON type, a field given twice (by its proto and its JSON name)
// and two members of one oneof. What it accepts, protobuf-es's fromJson
// accepts; the leaf values (scalars, well-known types such as Timestamp and
// Duration written as strings) are tried with fromJson itself. Descriptions
// avoid ':', ',' and ';' (see domain/errors.ts): lists read "a | b | c".
import { ScalarType, fromJson, type DescEnum, type DescField, type DescMessage, type DescOneof, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import {
  BoolValueSchema,
  BytesValueSchema,
  DoubleValueSchema,
  FloatValueSchema,
  Int32ValueSchema,
  Int64ValueSchema,
  StringValueSchema,
  UInt32ValueSchema,
  UInt64ValueSchema,
  hasCustomJsonRepresentation,
  isWrapperDesc,
} from '@bufbuild/protobuf/wkt';
import type { FieldViolation } from '../../domain/errors.ts';

/**
 * Every mistake in `json` read as a `schema` message (none: fromJson reads it
 * as the client meant it). A top level that is not an object is not a field's
 * mistake: it is left to the parser, which refuses it.
 */
export function strictJsonViolations(schema: DescMessage, json: JsonValue): FieldViolation[] {
  const violations: FieldViolation[] = [];
  // The top level is the first message deep, as fromJson counts.
  if (isObject(json)) checkFields(schema, json, '', 1, violations);
  return violations;
}

/** protobuf-es's own nesting limit: deeper JSON is refused by its parser anyway. */
const MAX_DEPTH = 100;

function checkFields(desc: DescMessage, json: JsonObject, path: string, depth: number, out: FieldViolation[]): void {
  const fields = fieldsByKey(desc);
  let oneofMembers: Map<DescOneof, DescField> | undefined;
  for (const key in json) {
    const value = json[key]!;
    const field = fields.get(key);
    if (field === undefined) {
      out.push({ field: join(path, key), description: `is not a field of ${desc.typeName} (its fields are ${desc.fields.map((f) => f.name).join(' | ')})` });
      continue;
    }
    const at = join(path, field.name);
    // Reported once, where the JSON name is used.
    if (key !== field.name && Object.hasOwn(json, field.name)) {
      out.push({ field: at, description: `is given twice (as ${field.name} and as ${field.jsonName})` });
      continue;
    }
    // As in fromJson: a null scalar does not choose its oneof member.
    if (field.oneof !== undefined && !(value === null && field.fieldKind === 'scalar')) {
      oneofMembers ??= new Map();
      const other = oneofMembers.get(field.oneof);
      if (other !== undefined) {
        out.push({ field: at, description: `cannot be set with ${other.name} (at most one field of oneof ${field.oneof.name} may be set)` });
        continue;
      }
      oneofMembers.set(field.oneof, field);
    }
    // null leaves any field unset (an empty list or map).
    if (value !== null) checkField(field, value, at, depth, out);
  }
}

function checkField(field: DescField, value: JsonValue, path: string, depth: number, out: FieldViolation[]): void {
  if (field.fieldKind === 'list') {
    if (!Array.isArray(value)) out.push({ field: path, description: `must be a JSON array (got ${shown(value)})` });
    else value.forEach((item, index) => checkElement(field, item, `${path}[${index}]`, depth, out));
    return;
  }
  if (field.fieldKind === 'map') {
    if (!isObject(value)) {
      out.push({ field: path, description: `must be a JSON object (got ${shown(value)})` });
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      const at = `${path}[${key}]`;
      if (!mapKeyAccepted(field.mapKey, key)) out.push({ field: at, description: `is not a valid key (a key must be ${SCALARS[field.mapKey].words})` });
      checkElement(field, item, at, depth, out);
    }
    return;
  }
  checkValue(field, value, path, depth, out);
}

/** A list item or map value: null only stands for google.protobuf.Value's or NullValue's null. */
function checkElement(field: DescField, value: JsonValue, path: string, depth: number, out: FieldViolation[]): void {
  const nullable = field.message?.typeName === 'google.protobuf.Value' || field.enum?.typeName === 'google.protobuf.NullValue';
  if (value === null && !nullable) out.push({ field: path, description: 'must not be null' });
  else checkValue(field, value, path, depth, out);
}

/** One value of the field's type (a message, an enum or a scalar). */
function checkValue(field: DescField, value: JsonValue, path: string, depth: number, out: FieldViolation[]): void {
  if (field.message !== undefined) checkMessage(field.message, value, path, depth + 1, out);
  else if (field.enum !== undefined) checkEnum(field.enum, value, path, out);
  else if (field.scalar !== undefined && !scalarAccepted(field.scalar, value)) {
    out.push({ field: path, description: `must be ${SCALARS[field.scalar].words} (got ${shown(value)})` });
  }
}

function checkMessage(desc: DescMessage, value: JsonValue, path: string, depth: number, out: FieldViolation[]): void {
  if (depth > MAX_DEPTH) out.push({ field: path, description: `is nested more than ${MAX_DEPTH} messages deep` });
  else if (hasCustomJsonRepresentation(desc)) {
    if (!accepted(desc, value)) out.push({ field: path, description: `must be ${wellKnownWords(desc)} (got ${shown(value)})` });
  } else if (!isObject(value)) out.push({ field: path, description: `must be a JSON object (got ${shown(value)})` });
  else checkFields(desc, value, path, depth, out);
}

/** Its JSON name or proto name, or an int32 (any for an open enum, as in fromJson; the service refuses unknown numbers itself). */
function checkEnum(desc: DescEnum, value: JsonValue, path: string, out: FieldViolation[]): void {
  const known = typeof value === 'string'
    ? enumNames(desc).has(value)
    : typeof value === 'number' && (desc.open ? isInt32(value) : desc.values.some((v) => v.number === value));
  if (known) return;
  // UNSPECIFIED is accepted (it means unset), but it is no choice to offer.
  const choices = desc.values.filter((v) => !v.name.endsWith('_UNSPECIFIED')).map((v) => v.jsonName);
  out.push({ field: path, description: `must be one of ${choices.join(' | ')} (got ${shown(value)})` });
}

/** The usual values pass at once; any other is tried with fromJson on the scalar's wrapper type. */
function scalarAccepted(type: ScalarType, value: JsonValue): boolean {
  return plainlyValid(type, value) || accepted(SCALARS[type].schema, value);
}

// A string with an unpaired surrogate is not valid UTF-8 (fromJson refuses it).
const LONE_SURROGATE = /\p{Surrogate}/u;
// At most 15 digits: below 2^53, so within every 64-bit integer type.
const SMALL_INTEGER_TEXT = /^-?\d{1,15}$/;

/** Cheap checks for the common cases: true only when fromJson would accept the value. */
function plainlyValid(type: ScalarType, value: JsonValue): boolean {
  switch (type) {
    case ScalarType.STRING:
      return typeof value === 'string' && !LONE_SURROGATE.test(value);
    case ScalarType.BOOL:
      return typeof value === 'boolean';
    case ScalarType.DOUBLE:
      return typeof value === 'number';
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return typeof value === 'number' && isInt32(value);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return typeof value === 'string' ? SMALL_INTEGER_TEXT.test(value) : typeof value === 'number' && Number.isSafeInteger(value);
    default:
      return false;
  }
}

/** Whether fromJson reads `value` as a `desc` message (a wrapper's for a scalar). */
function accepted(desc: DescMessage, value: JsonValue): boolean {
  try {
    fromJson(desc, value);
    return true;
  } catch {
    return false;
  }
}

/** Each scalar is read like the value of its wrapper type, which fromJson reads as the bare scalar. */
const SCALARS: Record<ScalarType, { schema: DescMessage; words: string }> = {
  [ScalarType.DOUBLE]: { schema: DoubleValueSchema, words: 'a number' },
  [ScalarType.FLOAT]: { schema: FloatValueSchema, words: 'a 32-bit float' },
  [ScalarType.INT64]: { schema: Int64ValueSchema, words: 'a 64-bit integer' },
  [ScalarType.SINT64]: { schema: Int64ValueSchema, words: 'a 64-bit integer' },
  [ScalarType.SFIXED64]: { schema: Int64ValueSchema, words: 'a 64-bit integer' },
  [ScalarType.UINT64]: { schema: UInt64ValueSchema, words: 'an unsigned 64-bit integer' },
  [ScalarType.FIXED64]: { schema: UInt64ValueSchema, words: 'an unsigned 64-bit integer' },
  [ScalarType.INT32]: { schema: Int32ValueSchema, words: 'a 32-bit integer' },
  [ScalarType.SINT32]: { schema: Int32ValueSchema, words: 'a 32-bit integer' },
  [ScalarType.SFIXED32]: { schema: Int32ValueSchema, words: 'a 32-bit integer' },
  [ScalarType.UINT32]: { schema: UInt32ValueSchema, words: 'an unsigned 32-bit integer' },
  [ScalarType.FIXED32]: { schema: UInt32ValueSchema, words: 'an unsigned 32-bit integer' },
  [ScalarType.BOOL]: { schema: BoolValueSchema, words: 'true or false' },
  [ScalarType.STRING]: { schema: StringValueSchema, words: 'a string' },
  [ScalarType.BYTES]: { schema: BytesValueSchema, words: 'base64 text' },
};

/** Map keys are JSON strings: "true" or "false", or an integer's digits. */
function mapKeyAccepted(type: ScalarType, key: string): boolean {
  if (type === ScalarType.BOOL) return key === 'true' || key === 'false';
  return type === ScalarType.STRING || scalarAccepted(type, key);
}

function wellKnownWords(desc: DescMessage): string {
  if (isWrapperDesc(desc)) return SCALARS[desc.fields[0].scalar].words;
  switch (desc.typeName) {
    case 'google.protobuf.Timestamp':
      return 'an RFC 3339 timestamp string';
    case 'google.protobuf.Duration':
      return 'a duration string in seconds such as "90s" or "1.5s"';
    default:
      return `the JSON form of ${desc.typeName}`;
  }
}

const namesOfEnums = new WeakMap<DescEnum, Set<string>>();

/** An enum's value names as fromJson reads them: JSON names and proto names. */
function enumNames(desc: DescEnum): Set<string> {
  let names = namesOfEnums.get(desc);
  if (names === undefined) {
    names = new Set(desc.values.flatMap((v) => [v.jsonName, v.name]));
    namesOfEnums.set(desc, names);
  }
  return names;
}

const fieldKeys = new WeakMap<DescMessage, Map<string, DescField>>();

/** A message's fields by proto name and by JSON name (lowerCamelCase), as fromJson looks them up. */
function fieldsByKey(desc: DescMessage): Map<string, DescField> {
  let keys = fieldKeys.get(desc);
  if (keys === undefined) {
    keys = new Map();
    for (const field of desc.fields) keys.set(field.name, field).set(field.jsonName, field);
    fieldKeys.set(desc, keys);
  }
  return keys;
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= -0x8000_0000 && value <= 0x7fff_ffff;
}

function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

/** The offending value, short: strings quoted (and cut), objects and arrays by kind. */
function shown(value: JsonValue): string {
  if (Array.isArray(value)) return 'an array';
  if (isObject(value)) return 'an object';
  if (typeof value !== 'string') return String(value);
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}
