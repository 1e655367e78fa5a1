/*
 * The thread-local last error (src/lib/error.c): saving it aside and raising
 * it again, on the same thread after other calls and on another thread.
 */
#include <pthread.h>
#include <string.h>

#include "common.h"
#include "helpers.h"

static void test_save_restore(void **state)
{
	atrest__saved_error saved;

	(void)state;
	atrest__error(ATREST_EINTEGRITY, "segment %d failed", 7);
	atrest__error_save(&saved);
	assert_int_equal(saved.code, ATREST_EINTEGRITY);
	atrest__error(ATREST_ERROR, "something else");
	assert_int_equal(atrest__error_restore(&saved), ATREST_EINTEGRITY);
	assert_int_equal(atrest_error_last()->code, ATREST_EINTEGRITY);
	assert_string_equal(atrest_error_last()->message, "segment 7 failed");
}

static void test_save_nothing(void **state)
{
	atrest__saved_error saved;

	(void)state;
	atrest_error_clear();
	atrest__error_save(&saved);
	assert_int_equal(saved.code, 0);
	atrest__error(ATREST_ERROR, "later");
	assert_int_equal(atrest__error_restore(&saved), 0);
	assert_null(atrest_error_last());
}

/* A long message survives whole (up to the buffer), terminated. */
static void test_save_long(void **state)
{
	char big[2000];
	atrest__saved_error saved;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	atrest__error(ATREST_EKEY, "%s", big);
	atrest__error_save(&saved);
	assert_int_equal(atrest__error_restore(&saved), ATREST_EKEY);
	assert_int_equal(strlen(atrest_error_last()->message), ATREST__ERROR_MSG_MAX - 1);
}

static void *other_thread(void *arg)
{
	atrest__error(ATREST_ENOSPC, "disk full in a worker");
	atrest__error_save(arg);
	return NULL;
}

static void test_cross_thread(void **state)
{
	atrest__saved_error saved;
	pthread_t t;

	(void)state;
	atrest_error_clear();
	assert_int_equal(pthread_create(&t, NULL, other_thread, &saved), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_null(atrest_error_last()); /* thread-local: not raised here */
	assert_int_equal(atrest__error_restore(&saved), ATREST_ENOSPC);
	assert_string_equal(atrest_error_last()->message, "disk full in a worker");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_save_restore),
		cmocka_unit_test(test_save_nothing),
		cmocka_unit_test(test_save_long),
		cmocka_unit_test(test_cross_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
