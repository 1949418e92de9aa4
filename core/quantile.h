/* quantile: Prometheus' histogram_quantile, computed in-process from one
 * query's bucket increases so that p50, p90 and p99 cost one query. */
#ifndef SMI_QUANTILE_H
#define SMI_QUANTILE_H

#include <stddef.h>

typedef struct quantile_bucket {
	double upper_bound; /* the `le` value; INFINITY for +Inf */
	double count;       /* cumulative count (increase over the window) */
} quantile_bucket;

/*
 * Exactly Prometheus' classic-histogram algorithm (promql/quantile.go):
 * sorts `buckets` in place by upper bound, merges equal bounds, forces
 * monotonic counts, and interpolates linearly inside the bucket holding
 * rank q * total.  Returns NaN when there is no +Inf bucket, fewer than
 * two buckets, or a zero total; the upper bound of the second-highest
 * bucket when the rank falls into +Inf; -Inf/+Inf for q < 0 / q > 1.
 */
double quantile_histogram(double q, quantile_bucket *buckets, size_t n);

#endif
