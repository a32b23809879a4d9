#!/usr/bin/python3
"""How evenly SO_REUSEPORT spreads connections over shards: a model, not a measurement.

The kernel picks a socket of a SO_REUSEPORT group by a hash of the connection's 4-tuple, so
each new connection lands on a shard as if drawn at random; steering by receiving CPU
(listen.steer_to_receiving_cpu) replaces that with the NIC's RSS hash over its queues, the
same draw over the queues. With N connections on k shards, the busiest shard holds more than
N/k. Under an open-loop load (each connection offering the same rate) the server saturates
when its busiest shard does: it can serve mean/busiest of k shards' capacity. (A closed-loop
load generator such as h2load hides this: connections on a busy shard just go slower.)

Prints a Markdown table: for each shard count and connection count, the median and 95th
percentile of the busiest shard's connections over independent draws. Seeded: the same
output every run. Usage: /usr/bin/python3 perf/tools/reuseport_balance.py [--draws N]"""

import argparse
import random
import statistics


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=2000, help="draws per cell (200 for 100,000 connections)")
    ap.add_argument("--shards", default="2,16,64")
    ap.add_argument("--conns", default="16,256,1024,10000,100000")
    a = ap.parse_args()
    rnd = random.Random(1)
    print("| shards | connections | mean per shard | busiest shard, median (p95) | usable share of "
          "open-loop capacity, mean/busiest (at p95) |")
    print("| --- | --- | --- | --- | --- |")
    for k in (int(x) for x in a.shards.split(",")):
        for n in (int(x) for x in a.conns.split(",")):
            if n < k:
                continue
            draws = a.draws if n <= 10000 else max(1, a.draws // 10)
            busiest = []
            for _ in range(draws):
                bins = [0] * k
                for _ in range(n):
                    bins[rnd.randrange(k)] += 1
                busiest.append(max(bins))
            busiest.sort()
            med, p95 = statistics.median(busiest), busiest[int(0.95 * len(busiest))]
            print(f"| {k} | {n:,} | {n / k:,.1f} | {med:,.0f} ({p95:,}) | {n / k / med:.2f} ({n / k / p95:.2f}) |")


if __name__ == "__main__":
    main()
