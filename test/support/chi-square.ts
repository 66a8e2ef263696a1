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
  return 1 - regularizedLowerGamma(df / 2, statistic / 2);
}

/** p-value of observed counts against expected probabilities (df = categories - 1). */
export function goodnessOfFit(observed: readonly number[], probabilities: readonly number[]): number {
  return chiSquarePValue(chiSquareStatistic(observed, probabilities), observed.length - 1);
}

// P(a, x) by its power series; x stays moderate in these tests, where it converges fast.
function regularizedLowerGamma(a: number, x: number): number {
  if (x <= 0) return 0;
  let term = 1 / a;
  let sum = term;
  for (let k = 1; k < 10_000; k++) {
    term *= x / (a + k);
    sum += term;
    if (term < sum * 1e-15) break;
  }
  return Math.min(1, sum * Math.exp(-x + a * Math.log(x) - logGamma(a)));
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
