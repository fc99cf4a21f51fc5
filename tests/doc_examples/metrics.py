"""hookline.metrics by hand: a plugin's own latency histogram, its percentiles, its exposition."""

from time import perf_counter_ns

from hookline.metrics import (
    SAMPLE,
    Histogram,
    bucket_index,
    prometheus_counter,
    prometheus_histogram,
)

# --8<-- [start:record]
lookups = Histogram()
for ns in (1_200, 1_350, 1_500, 2_100, 48_000):  # what a clock measured, in nanoseconds
    lookups.add(ns)
# --8<-- [end:record]


# --8<-- [start:hot]
bins = lookups.bins


def timed_lookup(ip: str) -> str:
    """Time each call into ``lookups`` without calling a method of it."""
    start = perf_counter_ns()
    try:
        return "SE" if ip.startswith("10.") else "NO"
    finally:
        elapsed = perf_counter_ns() - start
        bins[bucket_index(elapsed)] += elapsed + SAMPLE
# --8<-- [end:hot]


# --8<-- [start:main]
if __name__ == "__main__":
    print(lookups.count, lookups.sum_ns, lookups.quantile(0.5), lookups.quantile(0.99))
    text = (prometheus_counter("geo_lookups_total", "Lookups, by where the answer came from.",
                               {"cache": 4, "remote": 1}, label="source")
            + prometheus_histogram("geo_lookup_seconds", "Latency of a lookup.",
                                   {"geo.country": lookups}))
    lines = text.splitlines()
    print("\n".join(lines[:6]))
    print("\n".join(line for line in lines if 'le="2.048e-06"' in line or "_count" in line))
    timed_lookup("10.0.0.7")
    print(lookups.count)
# --8<-- [end:main]
