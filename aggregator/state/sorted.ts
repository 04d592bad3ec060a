/** Binary searches over the store's sorted device ids (list() pages by id). */

/** First index whose id is > key. */
export function upperBound(ids: readonly string[], key: string): number {
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
export function lowerBound(ids: readonly string[], key: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The store's device ids for paging by id: appended as devices appear, sorted only when a page is asked for (most
 * devices arrive in bursts, and sorting once per page request beats keeping the array sorted on every insert).
 */
export class SortedIds {
  private ids: string[] = [];
  private sorted = true;

  /** Replaces the set (after a load). */
  reset(ids: string[]): void {
    this.ids = ids;
    this.sorted = false;
  }

  add(id: string): void {
    if (this.sorted && this.ids.length > 0 && this.ids[this.ids.length - 1] >= id) this.sorted = false;
    this.ids.push(id);
  }

  remove(id: string): void {
    const ids = this.ids;
    const i = this.sorted ? lowerBound(ids, id) : ids.indexOf(id);
    if (ids[i] === id) ids.splice(i, 1);
  }

  /** The ids in order (sorted now if needed); the caller must not change the array. */
  all(): readonly string[] {
    if (!this.sorted) {
      this.ids.sort();
      this.sorted = true;
    }
    return this.ids;
  }
}
