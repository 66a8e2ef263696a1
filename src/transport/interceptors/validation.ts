// Request validation from the contract itself: the buf.validate rules in
// proto/ (lengths, ranges, required fields, formats), enforced by
// protovalidate, so clients in any language can read them and check
// requests the same way. Violations reach clients through errors.ts, in the
// contract's shape. Rules that need the database stay in the domain.
import { createRegistry } from '@bufbuild/protobuf';
import { createValidator } from '@bufbuild/protovalidate';
import type { Interceptor } from '@connectrpc/connect';
import { createValidateInterceptor } from '@connectrpc/validate';
import { file_crm_v1_rules } from '../../../gen/crm/v1/rules_pb.js';

export function validationInterceptor(): Interceptor {
  // The registry makes our own predefined rules (rules.proto) known to the validator.
  return createValidateInterceptor({ validator: createValidator({ registry: createRegistry(file_crm_v1_rules), regexMatch: contractRegexMatch }) });
}

const compiled = new Map<string, RegExp>();

/**
 * Matches the regexes of our rules with JavaScript's own engine instead of
 * protovalidate's default, an RE2 written in JavaScript that took about 40% of
 * a RegisterContact's validation. The patterns come from our .proto files,
 * never from clients, and are character classes and anchors that cannot
 * backtrack, so RE2's linear-time guarantee is not needed. Each is rewritten
 * so that it means in JavaScript what it means in RE2, which other languages'
 * protovalidate use: test/transport/interceptors/validation.test.ts checks
 * every pattern in proto/ against RE2 on a corpus of edge cases.
 */
export function contractRegexMatch(pattern: string, against: string): boolean {
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    regex = new RegExp(javascriptPattern(pattern), 'u');
    compiled.set(pattern, regex);
  }
  return regex.test(against);
}

/** RE2's \s: ASCII white space only (JavaScript's \s is Unicode's). */
const RE2_SPACE = '\\t\\n\\f\\r ';

/**
 * The RE2 syntax our patterns use, in JavaScript's (with the u flag): \s and \S
 * become RE2's ASCII sets, \x{FEFF} becomes \u{FEFF}. What this does not
 * translate, and would read differently (POSIX classes, flags, \A, \z, \C,
 * \Q, \S inside a class), is refused, so a new pattern cannot change meaning
 * unnoticed.
 */
function javascriptPattern(re2: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < re2.length; i++) {
    const c = re2[i]!;
    if (c !== '\\') {
      if (c === '[' && inClass && re2[i + 1] === ':') throw new Error(`regex ${re2}: POSIX classes are not translated`);
      if (c === '(' && re2[i + 1] === '?') throw new Error(`regex ${re2}: groups with flags are not translated`);
      if (c === '[') inClass = true;
      else if (c === ']') inClass = false;
      out += c;
      continue;
    }
    const escaped = re2[++i];
    if (escaped === 's') out += inClass ? RE2_SPACE : `[${RE2_SPACE}]`;
    else if (escaped === 'S' && !inClass) out += `[^${RE2_SPACE}]`;
    else if (escaped === 'x' && re2[i + 1] === '{') {
      const end = re2.indexOf('}', i);
      out += `\\u{${re2.slice(i + 2, end)}}`;
      i = end;
    } else if (escaped === undefined || 'SACQz'.includes(escaped)) throw new Error(`regex ${re2}: \\${escaped ?? ''} is not translated`);
    else out += `\\${escaped}`;
  }
  return out;
}
