/* quantile: Prometheus' classic histogram_quantile (promql/quantile.go,
 * bucketQuantile), re-derived step by step from mesh-telemetry.md §1.2. */
#include "quantile.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

/*
 * Relative difference below which two neighbouring cumulative counts are
 * taken as equal.  Prometheus has flattened such float noise (left by
 * summing rate() results) before forcing monotonicity since its PR #13153
 * (late 2023; §1.2's "later releases refine step 3"), with this tolerance.
 */
#define QUANTILE_PRECISION_TOLERANCE 1e-12

/*
 * Orders by upper bound.  Prometheus does not expect NaN bounds and leaves
 * their order to its sort; qsort needs a consistent order, so NaN sorts
 * first (as Go's sort.Float64s does).  A NaN bound then yields NaN from the
 * interpolation rather than a made-up number.
 */
static int quantile_bucket_compare(const void *left, const void *right)
{
	double a = ((const quantile_bucket *)left)->upper_bound;
	double b = ((const quantile_bucket *)right)->upper_bound;

	if (isnan(a))
		return isnan(b) ? 0 : -1;
	if (isnan(b))
		return 1;
	return (a > b) - (a < b);
}

/* Sums the counts of buckets sharing an upper bound (several series with the
 * same `le` after a `sum by`).  Input sorted; returns the new length. */
static size_t quantile_coalesce(quantile_bucket *buckets, size_t n)
{
	size_t kept = 0;

	for (size_t i = 1; i < n; i++) {
		if (buckets[i].upper_bound == buckets[kept].upper_bound) {
			buckets[kept].count += buckets[i].count;
		} else {
			kept++;
			buckets[kept] = buckets[i];
		}
	}
	return kept + 1;
}

/*
 * Replaces a count that differs from the last distinct one by a relative
 * 1e-12 or less with that one.  A NaN difference fails the test and becomes
 * the new reference, as in Prometheus.
 */
static void quantile_flatten_noise(quantile_bucket *buckets, size_t n)
{
	double previous = buckets[0].count;

	for (size_t i = 1; i < n; i++) {
		double current = buckets[i].count;
		double delta = fabs(current - previous);

		if (delta == 0)
			continue;
		if (delta / current <= QUANTILE_PRECISION_TOLERANCE)
			buckets[i].count = previous;
		else
			previous = current;
	}
}

/*
 * Raises each count to the running maximum: cumulative counts cannot fall,
 * but buckets scraped or summed at slightly different moments can.  NaN
 * compares false both ways, so a NaN count is left as it is, and a NaN in
 * the first bucket disables the forcing for all later ones.
 */
static void quantile_force_monotonic(quantile_bucket *buckets, size_t n)
{
	double running_max = buckets[0].count;

	for (size_t i = 1; i < n; i++) {
		if (buckets[i].count > running_max)
			running_max = buckets[i].count;
		else if (buckets[i].count < running_max)
			buckets[i].count = running_max;
	}
}

/*
 * Index of the first of buckets[0..limit) whose count is >= rank, or limit
 * if none.  A binary search like Go's sort.Search, not a scan: with NaN
 * counts (every comparison false) the answer depends on the probe order,
 * and matching Prometheus means probing as it does.
 */
static size_t quantile_search_rank(const quantile_bucket *buckets, size_t limit, double rank)
{
	size_t low = 0, high = limit;

	while (low < high) {
		size_t middle = low + (high - low) / 2;

		if (!(buckets[middle].count >= rank))
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

double quantile_histogram(double q, quantile_bucket *buckets, size_t n)
{
	double total, rank, start, end, count_in_bucket;
	size_t b;

	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	/* Prometheus never calls this without buckets; we may. */
	if (buckets == NULL || n == 0)
		return NAN;

	qsort(buckets, n, sizeof(*buckets), quantile_bucket_compare);
	if (!(isinf(buckets[n - 1].upper_bound) && buckets[n - 1].upper_bound > 0))
		return NAN;
	n = quantile_coalesce(buckets, n);
	quantile_flatten_noise(buckets, n);
	quantile_force_monotonic(buckets, n);
	if (n < 2)
		return NAN;

	total = buckets[n - 1].count;
	if (total == 0)
		return NAN;
	rank = q * total;
	/* The +Inf bucket is excluded: landing there yields its lower edge. */
	b = quantile_search_rank(buckets, n - 1, rank);
	if (b == n - 1)
		return buckets[n - 2].upper_bound;
	if (b == 0 && buckets[0].upper_bound <= 0)
		return buckets[0].upper_bound;

	/* Linear interpolation inside bucket b; the first bucket is taken to
	 * start at 0.  With q = 0 and an empty first bucket this is 0/0, i.e.
	 * NaN, exactly as in Prometheus. */
	start = 0;
	end = buckets[b].upper_bound;
	count_in_bucket = buckets[b].count;
	if (b > 0) {
		start = buckets[b - 1].upper_bound;
		count_in_bucket -= buckets[b - 1].count;
		rank -= buckets[b - 1].count;
	}
	return start + (end - start) * (rank / count_in_bucket);
}
