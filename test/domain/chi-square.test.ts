import { describe, it, expect } from 'vitest';
import { chiSquarePValue, chiSquareStatistic, goodnessOfFit } from '../support/chi-square.ts';

/** Closed form for even df: P(X >= x) = e^(-x/2) * sum_{j < df/2} (x/2)^j / j!. */
function evenDfPValue(x: number, df: number): number {
  let term = 1;
  let sum = 1;
  for (let j = 1; j < df / 2; j++) {
    term *= x / 2 / j;
    sum += term;
  }
  return Math.exp(-x / 2) * sum;
}

describe('chiSquarePValue', () => {
  it('known critical values: df=1 x=3.841 -> 0.05, df=2 x=13.816 -> 0.001, df=5 x=11.07 -> 0.05', () => {
    expect(Math.abs(chiSquarePValue(3.841, 1) - 0.05)).toBeLessThan(1e-4);
    expect(Math.abs(chiSquarePValue(13.816, 2) - 0.001)).toBeLessThan(1e-6);
    expect(Math.abs(chiSquarePValue(11.07, 5) - 0.05)).toBeLessThan(1e-4);
  });

  it('a huge statistic gives ~0, not NaN: df=2 x=5000', () => {
    const p = chiSquarePValue(5000, 2);
    expect(Number.isNaN(p)).toBe(false);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(1e-300);
  });

  it('large statistics for many df stay finite, in [0, 1], and tiny (< 1e-20)', () => {
    for (const df of [1, 2, 3, 5, 7, 10, 30])
      for (const x of [200, 1000, 5000, 1e5, 1e7]) {
        const p = chiSquarePValue(x, df);
        expect(Number.isFinite(p), `df=${df} x=${x}`).toBe(true);
        expect(p, `df=${df} x=${x}`).toBeGreaterThanOrEqual(0);
        expect(p, `df=${df} x=${x}`).toBeLessThan(1e-20);
      }
  });

  it('matches the closed form for even df on both sides of the series / continued-fraction switch (x = df + 2)', () => {
    for (const df of [2, 4, 10])
      for (const x of [0.01, 0.5, 1, 2, 3, 5, 5.99, 6, 6.01, 8, 11.9, 12, 12.1, 20, 50, 100, 300]) {
        const expected = evenDfPValue(x, df);
        expect(Math.abs(chiSquarePValue(x, df) - expected), `df=${df} x=${x}`).toBeLessThanOrEqual(1e-10 * expected + 1e-15);
      }
  });

  it('is 1 at 0 and decreases with the statistic', () => {
    for (const df of [1, 2, 5]) {
      expect(chiSquarePValue(0, df)).toBe(1);
      let previous = 1;
      for (let x = 0.25; x <= 60; x += 0.25) {
        const p = chiSquarePValue(x, df);
        expect(p, `df=${df} x=${x}`).toBeLessThanOrEqual(previous);
        previous = p;
      }
    }
  });

  it('goodnessOfFit of a gross mismatch is ~0, not NaN', () => {
    expect(chiSquareStatistic([30_000, 0, 0], [0.1, 0.3, 0.6])).toBeGreaterThan(5000);
    const p = goodnessOfFit([30_000, 0, 0], [0.1, 0.3, 0.6]);
    expect(Number.isNaN(p)).toBe(false);
    expect(p).toBeLessThan(1e-300);
  });
});
