/* test_quantile: quantile_histogram against mesh-telemetry.md §1.2 (worked
 * Linkerd check) and the special cases of Prometheus' bucketQuantile. */
#include "quantile.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Tolerance for interpolated results: a few ulps of values near 10. */
#define TOLERANCE 1e-12

/*
 * Linkerd's response_latency_ms buckets with §1.2's cumulative increases
 * (1:120 … 20:990, +Inf:1000); the "…" is filled in monotonically.
 */
static void linkerd_buckets(quantile_bucket out[26])
{
	static const quantile_bucket reference[26] = {
	    {1, 120},     {2, 410},         {3, 630},     {4, 760},     {5, 840},     {10, 955},
	    {20, 990},    {30, 995},        {40, 996},    {50, 997},    {100, 998},   {200, 999},
	    {300, 999},   {400, 999},       {500, 999},   {1000, 999},  {2000, 999},  {3000, 999},
	    {4000, 999},  {5000, 999},      {10000, 999}, {20000, 999}, {30000, 999}, {40000, 999},
	    {50000, 999}, {INFINITY, 1000},
	};

	for (size_t i = 0; i < 26; i++)
		out[i] = reference[i];
}

START_TEST(test_worked_check_p90)
{
	quantile_bucket buckets[26];

	linkerd_buckets(buckets);
	/* rank 900 -> le=10: 5 + 5 * (900 - 840) / (955 - 840) */
	ck_assert_double_eq_tol(quantile_histogram(0.9, buckets, 26), 7.608695652173913, TOLERANCE);
}
END_TEST

START_TEST(test_worked_check_other_quantiles)
{
	quantile_bucket buckets[26];

	/* rank 500 -> le=3: 2 + 1 * (500 - 410) / (630 - 410) */
	linkerd_buckets(buckets);
	ck_assert_double_eq_tol(quantile_histogram(0.5, buckets, 26), 2.409090909090909, TOLERANCE);
	/* rank 990 -> le=20 exactly (count >= rank picks it): its upper bound */
	linkerd_buckets(buckets);
	ck_assert_double_eq_tol(quantile_histogram(0.99, buckets, 26), 20, TOLERANCE);
	/* rank 60 -> le=1, interpolated from the natural lower bound 0 */
	linkerd_buckets(buckets);
	ck_assert_double_eq_tol(quantile_histogram(0.06, buckets, 26), 0.5, TOLERANCE);
	/* rank 1000 -> +Inf: capped at the highest finite bound, 50000 ms */
	linkerd_buckets(buckets);
	ck_assert_double_eq(quantile_histogram(1, buckets, 26), 50000);
}
END_TEST

START_TEST(test_unsorted_input_sorted_in_place)
{
	quantile_bucket buckets[26], shuffled[26];

	linkerd_buckets(buckets);
	/* reverse, then swap a few: any order must give the same answer */
	for (size_t i = 0; i < 26; i++)
		shuffled[i] = buckets[25 - i];
	quantile_bucket tmp = shuffled[3];
	shuffled[3] = shuffled[17];
	shuffled[17] = tmp;
	ck_assert_double_eq_tol(quantile_histogram(0.9, shuffled, 26), 7.608695652173913,
	                        TOLERANCE);
	for (size_t i = 1; i < 26; i++)
		ck_assert(shuffled[i - 1].upper_bound < shuffled[i].upper_bound);
}
END_TEST

START_TEST(test_q_out_of_range)
{
	quantile_bucket buckets[26];

	linkerd_buckets(buckets);
	ck_assert_double_nan(quantile_histogram(NAN, buckets, 26));
	ck_assert_double_eq(quantile_histogram(-0.1, buckets, 26), -INFINITY);
	ck_assert_double_eq(quantile_histogram(1.1, buckets, 26), INFINITY);
	/* q is checked before the buckets are looked at */
	ck_assert_double_eq(quantile_histogram(-1, NULL, 0), -INFINITY);
	ck_assert_double_eq(quantile_histogram(2, NULL, 0), INFINITY);
	ck_assert_double_nan(quantile_histogram(NAN, NULL, 0));
}
END_TEST

START_TEST(test_no_buckets)
{
	ck_assert_double_nan(quantile_histogram(0.5, NULL, 0));
}
END_TEST

START_TEST(test_no_inf_bucket)
{
	quantile_bucket buckets[] = {{1, 10}, {2, 20}, {5, 30}};

	ck_assert_double_nan(quantile_histogram(0.5, buckets, COUNT(buckets)));
}
END_TEST

START_TEST(test_negative_inf_is_not_inf_bucket)
{
	quantile_bucket buckets[] = {{-INFINITY, 0}, {1, 10}};

	ck_assert_double_nan(quantile_histogram(0.5, buckets, COUNT(buckets)));
}
END_TEST

START_TEST(test_fewer_than_two_buckets)
{
	quantile_bucket only_inf[] = {{INFINITY, 10}};
	/* two series, one bound: merged into a single bucket */
	quantile_bucket merged_inf[] = {{INFINITY, 10}, {INFINITY, 5}};

	ck_assert_double_nan(quantile_histogram(0.5, only_inf, 1));
	ck_assert_double_nan(quantile_histogram(0.5, merged_inf, 2));
}
END_TEST

START_TEST(test_zero_total)
{
	/* buckets that matched but did not move in the window */
	quantile_bucket buckets[] = {{1, 0}, {2, 0}, {INFINITY, 0}};

	ck_assert_double_nan(quantile_histogram(0.5, buckets, COUNT(buckets)));
}
END_TEST

START_TEST(test_rank_in_inf_bucket)
{
	quantile_bucket buckets[] = {{1, 10}, {2, 20}, {INFINITY, 100}};

	/* rank 50 is above every finite bucket: second-highest bound */
	ck_assert_double_eq(quantile_histogram(0.5, buckets, COUNT(buckets)), 2);
}
END_TEST

START_TEST(test_first_bound_not_positive)
{
	quantile_bucket negative[] = {
	    {-1, 10},
	    {0, 20},
	    {1, 30},
	    {INFINITY, 30},
	};
	quantile_bucket zero[] = {{0, 10}, {1, 20}, {INFINITY, 20}};
	quantile_bucket positive[] = {{2, 10}, {INFINITY, 10}};

	/* rank 3 in the first bucket, bound <= 0: the bound itself */
	ck_assert_double_eq(quantile_histogram(0.1, negative, 4), -1);
	ck_assert_double_eq(quantile_histogram(0.25, zero, 3), 0);
	/* bound > 0: interpolated from 0, 0 + 2 * 5 / 10 */
	ck_assert_double_eq_tol(quantile_histogram(0.5, positive, 2), 1, TOLERANCE);
}
END_TEST

START_TEST(test_interpolation_between_negative_bounds)
{
	quantile_bucket buckets[] = {{-1, 10}, {0, 20}, {INFINITY, 20}};

	/* rank 15 -> le=0: -1 + 1 * (15 - 10) / (20 - 10) */
	ck_assert_double_eq_tol(quantile_histogram(0.75, buckets, 3), -0.5, TOLERANCE);
}
END_TEST

START_TEST(test_rank_on_bucket_boundary)
{
	quantile_bucket buckets[] = {{1, 10}, {2, 20}, {INFINITY, 20}};

	/* rank 10 == count of le=1: the lower bucket wins (count >= rank) */
	ck_assert_double_eq_tol(quantile_histogram(0.5, buckets, 3), 1, TOLERANCE);
}
END_TEST

START_TEST(test_equal_bounds_merged)
{
	quantile_bucket buckets[] = {
	    {1, 5},
	    {2, 20},
	    {1, 5},
	    {INFINITY, 20},
	};
	quantile_bucket again[4];

	for (size_t i = 0; i < 4; i++)
		again[i] = buckets[i];
	/* le=1 becomes 10: rank 10 -> 0 + 1 * 10 / 10 */
	ck_assert_double_eq_tol(quantile_histogram(0.5, buckets, 4), 1, TOLERANCE);
	/* rank 15 -> le=2: 1 + 1 * (15 - 10) / (20 - 10) */
	ck_assert_double_eq_tol(quantile_histogram(0.75, again, 4), 1.5, TOLERANCE);
}
END_TEST

START_TEST(test_equal_inf_bounds_merged)
{
	quantile_bucket buckets[] = {
	    {1, 10},
	    {INFINITY, 10},
	    {INFINITY, 10},
	};

	/* total 20, rank 10 -> le=1: 0 + 1 * 10 / 10 */
	ck_assert_double_eq_tol(quantile_histogram(0.5, buckets, 3), 1, TOLERANCE);
}
END_TEST

START_TEST(test_forced_monotonic)
{
	quantile_bucket low[] = {{1, 10}, {2, 8}, {3, 15}, {INFINITY, 15}};
	quantile_bucket high[4];

	for (size_t i = 0; i < 4; i++)
		high[i] = low[i];
	/* le=2 raised to 10; rank 9 -> le=1: 0 + 1 * 9 / 10 */
	ck_assert_double_eq_tol(quantile_histogram(0.6, low, 4), 0.9, TOLERANCE);
	/* rank 10.5 -> le=3: 2 + 1 * (10.5 - 10) / (15 - 10); unforced it
	 * would be 2 + (10.5 - 8) / 7 */
	ck_assert_double_eq_tol(quantile_histogram(0.7, high, 4), 2.1, TOLERANCE);
}
END_TEST

START_TEST(test_forced_monotonic_total)
{
	/* +Inf below le=2 is raised to 20, so the total is 20, not 15 */
	quantile_bucket buckets[] = {{1, 10}, {2, 20}, {INFINITY, 15}};

	/* rank 10 -> le=1: 1 */
	ck_assert_double_eq_tol(quantile_histogram(0.5, buckets, 3), 1, TOLERANCE);
}
END_TEST

START_TEST(test_float_noise_flattened)
{
	/*
	 * le=2 exceeds le=1 by a relative 1e-14: noise, flattened to 10 (the
	 * refinement §1.2 mentions).  rank = 20 * nextafter(0.5, 1) is just
	 * above 10, so the rank falls in le=3: 2 + 1 * (rank - 10) / 10.
	 * Without flattening it would land in le=2 at about 1.018.
	 */
	quantile_bucket buckets[] = {
	    {1, 10},
	    {2, 10 + 1e-13},
	    {3, 20},
	    {INFINITY, 20},
	};

	ck_assert_double_eq_tol(quantile_histogram(nextafter(0.5, 1), buckets, 4), 2, 1e-9);
}
END_TEST

START_TEST(test_q_zero)
{
	quantile_bucket filled[] = {{1, 10}, {2, 20}, {INFINITY, 20}};
	quantile_bucket empty_first[] = {{1, 0}, {2, 20}, {INFINITY, 20}};
	quantile_bucket negative_first[] = {
	    {-1, 0},
	    {2, 20},
	    {INFINITY, 20},
	};

	/* rank 0 -> bucket 0 (0 >= 0): 0 + 1 * 0 / 10 */
	ck_assert_double_eq(quantile_histogram(0, filled, 3), 0);
	/* bucket 0 is empty: 0 * (0 / 0) is NaN, as in Prometheus */
	ck_assert_double_nan(quantile_histogram(0, empty_first, 3));
	/* bound <= 0 is returned before any division */
	ck_assert_double_eq(quantile_histogram(0, negative_first, 3), -1);
}
END_TEST

START_TEST(test_nan_total)
{
	/* rank NaN: no comparison holds, the search ends at +Inf */
	quantile_bucket buckets[] = {{1, 10}, {2, 20}, {INFINITY, NAN}};

	ck_assert_double_eq(quantile_histogram(0.5, buckets, 3), 2);
}
END_TEST

START_TEST(test_nan_middle_count)
{
	/* binary search over le=1,2,3 for rank 15 probes le=2 (NaN: false),
	 * then le=3 (30: true); interpolation uses 30 - NaN */
	quantile_bucket buckets[] = {
	    {1, 10},
	    {2, NAN},
	    {3, 30},
	    {INFINITY, 30},
	};

	ck_assert_double_nan(quantile_histogram(0.5, buckets, 4));
}
END_TEST

START_TEST(test_nan_first_count)
{
	/* a NaN first count stops monotonic forcing; le=2 is found and its
	 * interpolation uses 20 - NaN */
	quantile_bucket buckets[] = {{1, NAN}, {2, 20}, {INFINITY, 30}};
	quantile_bucket high[] = {{1, NAN}, {2, 20}, {INFINITY, 30}};

	ck_assert_double_nan(quantile_histogram(0.5, buckets, 3));
	/* rank 27 is above le=2: second-highest bound, NaN notwithstanding */
	ck_assert_double_eq(quantile_histogram(0.9, high, 3), 2);
}
END_TEST

static Suite *quantile_suite(void)
{
	Suite *suite = suite_create("quantile");
	TCase *reference = tcase_create("reference");
	TCase *edges = tcase_create("edges");
	TCase *repair = tcase_create("repair");

	tcase_add_test(reference, test_worked_check_p90);
	tcase_add_test(reference, test_worked_check_other_quantiles);
	tcase_add_test(reference, test_unsorted_input_sorted_in_place);
	suite_add_tcase(suite, reference);

	tcase_add_test(edges, test_q_out_of_range);
	tcase_add_test(edges, test_no_buckets);
	tcase_add_test(edges, test_no_inf_bucket);
	tcase_add_test(edges, test_negative_inf_is_not_inf_bucket);
	tcase_add_test(edges, test_fewer_than_two_buckets);
	tcase_add_test(edges, test_zero_total);
	tcase_add_test(edges, test_rank_in_inf_bucket);
	tcase_add_test(edges, test_first_bound_not_positive);
	tcase_add_test(edges, test_interpolation_between_negative_bounds);
	tcase_add_test(edges, test_rank_on_bucket_boundary);
	tcase_add_test(edges, test_q_zero);
	suite_add_tcase(suite, edges);

	tcase_add_test(repair, test_equal_bounds_merged);
	tcase_add_test(repair, test_equal_inf_bounds_merged);
	tcase_add_test(repair, test_forced_monotonic);
	tcase_add_test(repair, test_forced_monotonic_total);
	tcase_add_test(repair, test_float_noise_flattened);
	tcase_add_test(repair, test_nan_total);
	tcase_add_test(repair, test_nan_middle_count);
	tcase_add_test(repair, test_nan_first_count);
	suite_add_tcase(suite, repair);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(quantile_suite());
	int failures;

	srunner_run_all(runner, CK_NORMAL);
	failures = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failures != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
