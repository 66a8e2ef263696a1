// contractRegexMatch runs our rules' regexes on JavaScript's engine instead of
// protovalidate's RE2: here every pattern in proto/ is matched both ways on
// edge cases (control characters, every kind of Unicode space, emoji, RTL
// text, e-mail shapes) and must agree, so the swap changes no verdict.
import type { DescMessage, DescExtension } from '@bufbuild/protobuf';
import { getOption } from '@bufbuild/protobuf';
import { nestedTypes } from '@bufbuild/protobuf/reflect';
import { field, message, predefined, type Rule } from '@bufbuild/protovalidate/gen/buf/validate/validate_pb.js';
import { RE2JS } from '@bufbuild/re2';
import { describe, expect, it } from 'vitest';
import { file_crm_v1_admin } from '../../../gen/crm/v1/admin_pb.js';
import { file_crm_v1_distribution } from '../../../gen/crm/v1/distribution_pb.js';
import { file_crm_v1_query } from '../../../gen/crm/v1/query_pb.js';
import { file_crm_v1_resources } from '../../../gen/crm/v1/resources_pb.js';
import { file_crm_v1_rules } from '../../../gen/crm/v1/rules_pb.js';
import { contractRegexMatch } from '../../../src/transport/interceptors/validation.ts';

const FILES = [file_crm_v1_admin, file_crm_v1_distribution, file_crm_v1_query, file_crm_v1_resources, file_crm_v1_rules];

/** The regex of each `matches('...')` in a CEL expression, its CEL string escapes undone (only \\ and \' occur in ours). */
function celPatterns(expression: string): string[] {
  return [...expression.matchAll(/matches\('((?:[^'\\]|\\.)*)'\)/g)].map(([, literal]) =>
    literal!.replace(/\\(.)/g, (_, escaped: string) => {
      if (escaped !== '\\' && escaped !== "'") throw new Error(`CEL escape \\${escaped} in ${expression}: teach celPatterns to read it`);
      return escaped;
    }),
  );
}

/** Every regex our rules use: CEL matches() in message, field and predefined rules, and string.pattern. */
function contractPatterns(): Set<string> {
  const patterns = new Set<string>();
  const fromRules = (rules: Rule[]) => rules.forEach((rule) => celPatterns(rule.expression).forEach((p) => patterns.add(p)));
  for (const file of FILES) {
    for (const type of nestedTypes(file)) {
      if (type.kind === 'message') {
        const messageType: DescMessage = type;
        fromRules(getOption(messageType, message).cel);
        for (const member of messageType.fields) {
          const rules = getOption(member, field);
          fromRules(rules.cel);
          if (rules.type.case === 'string' && rules.type.value.pattern) patterns.add(rules.type.value.pattern);
        }
      } else if (type.kind === 'extension') {
        const extension: DescExtension = type;
        fromRules(getOption(extension, predefined).cel);
      }
    }
  }
  return patterns;
}

const SPECIAL_CODE_POINTS = [
  ...Array.from({ length: 0x21 }, (_, i) => i),
  0x7f, 0x80, 0x85, 0x9f, 0xa0, 0xad, 0x1680, 0x180e,
  ...Array.from({ length: 0x0c }, (_, i) => 0x2000 + i),
  0x200c, 0x200d, 0x2028, 0x2029, 0x202f, 0x205f, 0x2060, 0x3000, 0xfeff, 0xfffd, 0x1f600,
];
const WORDS = ['', 'a', 'Anna', '0', '+7 (900) 000-00-00', 'name@domain', ' name@domain ', 'a@b@c', '@', 'a@', '@b', 'a @b', 'a@b c', 'שלום', 'привет', '😀', "'; DROP TABLE lead; --"];
const CORPUS = [
  ...WORDS,
  ...SPECIAL_CODE_POINTS.flatMap((code) => {
    const c = String.fromCodePoint(code);
    return [c, `${c}${c}`, `x${c}y`, `${c}a@b`, `a@b${c}`, `a${c}@b`, `${c}7`];
  }),
];

describe('contractRegexMatch', () => {
  const patterns = contractPatterns();

  it('finds the patterns of our rules (printable, not_blank, the lead identity, phone and e-mail)', () => {
    expect(patterns.size).toBeGreaterThanOrEqual(4);
    expect(patterns).toContain('[0-9]');
    expect(patterns).toContain('[^\\s\\x{0B}\\p{Z}\\x{FEFF}]');
  });

  it(`agrees with RE2 on every pattern over ${CORPUS.length} edge cases`, () => {
    for (const pattern of patterns) {
      const re2 = RE2JS.compile(pattern);
      const disagreements = CORPUS.filter((text) => contractRegexMatch(pattern, text) !== re2.test(text));
      expect(disagreements.map((text) => [...text].map((c) => c.codePointAt(0)!.toString(16))), pattern).toEqual([]);
    }
  });

  it('refuses RE2 syntax it does not translate, rather than read it differently', () => {
    for (const pattern of ['[[:alpha:]]', '(?i)anna', '\\Aanna\\z', '[^\\S]']) expect(() => contractRegexMatch(pattern, 'anna'), pattern).toThrow(/not translated/);
  });
});
