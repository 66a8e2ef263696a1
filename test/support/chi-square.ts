// Pearson's chi-square goodness-of-fit test, for statistical assertions with a
// principled bound instead of a hand-picked tolerance.

/** The chi-square statistic of observed counts against expected probabilities. */
export function chiSquareStatistic(observed: readonly number[], probabilities: readonly number[]): number {
  const n = observed.reduce((a, b) => a + b, 0);
  return observed.reduce((sum, o, i) => {
    const expected = n * probabilities[i]!;
    return sum + (o - expected) ** 2 / expected;
  }, 0);
}

/** P(X >= statistic) for X ~ chi-square with `df` degrees of freedom. */
export function chiSquarePValue(statistic: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`chi-square needs df > 0, got ${df}`);
  if (Number.isNaN(statistic)) throw new RangeError('chi-square statistic is NaN');
  if (statistic <= 0) return 1;
  if (statistic === Infinity) return 0;
  return regularizedUpperGamma(df / 2, statistic / 2);
}

/** p-value of observed counts against expected probabilities (df = categories - 1). */
export function goodnessOfFit(observed: readonly number[], probabilities: readonly number[]): number {
  return chiSquarePValue(chiSquareStatistic(observed, probabilities), observed.length - 1);
}

// Q(a, x) = 1 - P(a, x), as Numerical Recipes' gammq: the power series of P
// where it converges fast (x < a + 1), else the continued fraction of Q, which
// stays finite for large x (the series' terms overflow there, giving NaN).
function regularizedUpperGamma(a: number, x: number): number {
  return x < a + 1 ? 1 - lowerGammaSeries(a, x) : upperGammaContinuedFraction(a, x);
}

const EPS = 1e-15;
const FPMIN = 1e-300;
const MAX_ITERATIONS = 10_000;

/** e^-x x^a / Gamma(a), the common factor of both expansions. */
function prefactor(a: number, x: number): number {
  return Math.exp(-x + a * Math.log(x) - logGamma(a));
}

// P(a, x) by its power series (NR gser).
function lowerGammaSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let k = 1; k < MAX_ITERATIONS; k++) {
    term *= x / (a + k);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) break;
  }
  return Math.min(1, sum * prefactor(a, x));
}

// Q(a, x) by its continued fraction, modified Lentz's method (NR gcf).
function upperGammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / FPMIN;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.min(1, Math.max(0, prefactor(a, x) * h));
}

// Lanczos approximation.
function logGamma(z: number): number {
  const g = 7;
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  const x = z - 1;
  let a = c[0]!;
  const t = x + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}
