/* Unit tests for core/cache.c: hits within the TTL, expiry, errors never
 * stored, single-flight under real threads, bounded size. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"

static void lead(cache *c, const char *key, double now, int code, const char *body, double ttl)
{
	cache_answer a;
	cache_flight *f;
	ck_assert_int_eq(cache_begin(c, key, now, &a, &f), CACHE_LEADER);
	cache_complete(c, f, code, body, strlen(body), now, ttl);
}

START_TEST(test_hit_within_ttl_then_expiry)
{
	cache *c = cache_new(16);
	lead(c, "k", 100.0, 200, "{\"a\":1}", 2.0);
	cache_answer a;
	cache_flight *f;
	ck_assert_int_eq(cache_begin(c, "k", 101.9, &a, &f), CACHE_HIT);
	ck_assert_int_eq(a.code, 200);
	ck_assert_str_eq(a.body, "{\"a\":1}");
	free(a.body);
	ck_assert_int_eq(cache_begin(c, "other", 101.9, &a, &f), CACHE_LEADER);
	cache_complete(c, f, 200, "x", 1, 101.9, 2.0);
	/* At 102.0 the first answer has lived its 2 s. */
	ck_assert_int_eq(cache_begin(c, "k", 102.0, &a, &f), CACHE_LEADER);
	cache_complete(c, f, 200, "new", 3, 102.0, 2.0);
	ck_assert_int_eq(cache_begin(c, "k", 102.5, &a, &f), CACHE_HIT);
	ck_assert_str_eq(a.body, "new");
	free(a.body);
	cache_stats s;
	cache_get_stats(c, &s);
	ck_assert_uint_eq(s.hits, 2);
	ck_assert_uint_eq(s.misses, 3);
	ck_assert_uint_eq(s.shared, 0);
	cache_free(c);
}
END_TEST

START_TEST(test_errors_and_zero_ttl_are_not_stored)
{
	cache *c = cache_new(16);
	lead(c, "k", 1.0, 503, "down", 10.0);
	cache_answer a;
	cache_flight *f;
	ck_assert_int_eq(cache_begin(c, "k", 1.1, &a, &f), CACHE_LEADER);
	cache_complete(c, f, 200, "ok", 2, 1.1, 0.0);
	ck_assert_int_eq(cache_begin(c, "k", 1.2, &a, &f), CACHE_LEADER);
	cache_complete(c, f, 200, "ok", 2, 1.2, 5.0);
	cache_stats s;
	cache_get_stats(c, &s);
	ck_assert_uint_eq(s.entries, 1);
	cache_free(c);
}
END_TEST

START_TEST(test_disabled_cache_always_leads)
{
	cache *c = cache_new(0);
	lead(c, "k", 1.0, 200, "a", 10.0);
	lead(c, "k", 1.1, 200, "a", 10.0);
	cache_free(c);
}
END_TEST

START_TEST(test_size_is_bounded)
{
	cache *c = cache_new(8);
	char key[16];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		lead(c, key, 1.0, 200, "v", 60.0);
	}
	cache_stats s;
	cache_get_stats(c, &s);
	ck_assert_uint_le(s.entries, 8);
	/* The newest survive eviction. */
	cache_answer a;
	cache_flight *f;
	ck_assert_int_eq(cache_begin(c, "k99", 2.0, &a, &f), CACHE_HIT);
	free(a.body);
	cache_free(c);
}
END_TEST

typedef struct flight_test {
	cache *c;
	pthread_mutex_t lock;
	int leaders, shared;
} flight_test;

static void *concurrent_request(void *arg)
{
	flight_test *t = arg;
	cache_answer a;
	cache_flight *f;
	cache_outcome o = cache_begin(t->c, "same", 5.0, &a, &f);
	if (o == CACHE_LEADER) {
		usleep(200 * 1000); /* the Prometheus round trip others must wait for */
		cache_complete(t->c, f, 503, "shared error", 12, 5.2, 2.0);
	} else {
		ck_assert_int_eq(a.code, 503);
		ck_assert_str_eq(a.body, "shared error");
		free(a.body);
	}
	pthread_mutex_lock(&t->lock);
	if (o == CACHE_LEADER)
		t->leaders++;
	else
		t->shared++;
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

START_TEST(test_single_flight_shares_one_round_trip)
{
	enum { N = 50 };
	flight_test t = {.c = cache_new(16)};
	pthread_mutex_init(&t.lock, NULL);
	pthread_t threads[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, concurrent_request, &t), 0);
	for (int i = 0; i < N; i++)
		pthread_join(threads[i], NULL);
	/* Threads that arrive after the leader finished lead again (an error
	 * is not stored), but most of them must have shared the one answer. */
	ck_assert_int_eq(t.leaders + t.shared, N);
	ck_assert_int_ge(t.shared, 1);
	ck_assert_int_lt(t.leaders, N / 2);
	cache_stats s;
	cache_get_stats(t.c, &s);
	ck_assert_uint_eq(s.entries, 0); /* the error was kept only for its waiters */
	pthread_mutex_destroy(&t.lock);
	cache_free(t.c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_hit_within_ttl_then_expiry);
	tcase_add_test(tc, test_errors_and_zero_ttl_are_not_stored);
	tcase_add_test(tc, test_disabled_cache_always_leads);
	tcase_add_test(tc, test_size_is_bounded);
	tcase_add_test(tc, test_single_flight_shares_one_round_trip);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
