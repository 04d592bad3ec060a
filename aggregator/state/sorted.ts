/** Binary searches over the store's sorted device ids (list() pages by id). */

/** First index whose id is > key. */
export function upperBound(ids: string[], key: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid] <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose id is ≥ key. */
export function lowerBound(ids: string[], key: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
