/*
 * atrest-bench: the performance figures of atrest, each beside a reference
 * measured in the same run (OpenSSL, plaintext writes, age).  A program of
 * its own, linked against libatrest; 'atrest bench' runs it.
 */
#include <signal.h>
#include <string.h>

#include "bench_int.h"

static const struct cli_cmd bench_cmd = {"bench", cmd_bench,
	"measure performance against same-run references",
	"bench [--json] [--quick] [--dir DIR] [--only NAME,...] [--s3 LOC]\n\n"
	"Measure each performance figure beside its reference, measured in\n"
	"the same run, and print a table: value, reference, ratio, target\n"
	"and whether this machine meets it (informational; the exit status\n"
	"does not depend on it).  Keys are made in memory; nothing is kept.\n"
	"Also run as 'atrest-bench [OPTIONS]'.\n\n"
	"  --json      one JSON object with the machine, date and figures\n"
	"  --quick     smaller sizes and fewer runs (about a minute)\n"
	"  --dir DIR   work in a new directory under DIR (default $TMPDIR,\n"
	"              else /var/tmp); its file system is what put measures\n"
	"  --only N,.. only these figures: rss, object, put, get, records,\n"
	"              rewrap, crypt, pipe (encrypt and decrypt through\n"
	"              pipes), cli (one atrest process), passphrase, and\n"
	"              sweep (put, get, encrypt and decrypt from 4 KiB to\n"
	"              256 MiB; not run by default) and s3 (needs --s3)\n"
	"  --s3 LOC    s3://BUCKET/PREFIX for the s3 figures: puts and gets\n"
	"              of 4 KiB, 1 MiB and 1 GiB against plain signed\n"
	"              requests (credentials and endpoint as for atrest)\n"};

int main(int argc, char **argv)
{
	struct cli_ctx ctx = {0};
	int status, flushed;

	signal(SIGPIPE, SIG_IGN);
	ctx.cmd = &bench_cmd;
	status = cmd_bench(&ctx, argc, argv);
	flushed = cli_flush_stdout();
	return status ? status : flushed;
}
