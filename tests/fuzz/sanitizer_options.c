/*
 * Sanitizer defaults for the fuzz binaries: undefined behaviour stops the
 * run like a memory error does, so the fuzzer and the replay test see it.
 */
const char *__ubsan_default_options(void);

const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}
