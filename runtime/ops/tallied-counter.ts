import { Counter, type Registry } from 'prom-client';

/**
 * A counter with two labels whose increments gather in plain numbers and are added at each scrape; returns the
 * maker of one label pair's incrementer (made once, called per event: no label hashing on the hot path).
 */
export function talliedCounter<A extends string, B extends string>(
  registry: Registry,
  name: string,
  help: string,
  a: A,
  b: B,
): (va: string, vb: string) => () => void {
  const slots: { labels: Record<A | B, string>; n: number }[] = [];
  const counter: Counter<A | B> = new Counter({
    name,
    help,
    labelNames: [a, b],
    registers: [registry],
    collect() {
      for (const s of slots) {
        if (s.n === 0) continue;
        counter.inc(s.labels, s.n);
        s.n = 0;
      }
    },
  });
  return (va, vb) => {
    const slot = { labels: { [a]: va, [b]: vb } as Record<A | B, string>, n: 0 };
    slots.push(slot);
    return () => void slot.n++;
  };
}
