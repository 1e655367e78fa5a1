/*
 * The command table of the atrest tool: one row per command with its
 * summary and its --help text (from which the man pages are also made),
 * the global usage, and the help command.  A new command is one more row.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const struct cli_cmd cli_commands[] = {
	{"keygen", cmd_keygen, "print or write a new 256-bit master key",
		"keygen [--base64] [-o FILE]\n\n"
		"Print a new random 256-bit master key as 64 hex digits (or base64),\n"
		"or write it to FILE, which must not exist, with mode 0600.\n\n"
		"  --base64         base64 instead of hex\n"
		"  -o, --output FILE  write the key to FILE instead of stdout\n"},
	{"init", cmd_init, "create a store with chosen settings",
		"init [--cipher C] [--segment-size N] [--force]\n\n"
		"Create the store (refused when it already exists).  A directory\n"
		"that holds atrest objects but no keyring is refused too: restore\n"
		".atrest/ from a backup, or decide with --force to start a new\n"
		"keyring (those objects can then never be read).\n\n"
		"  --cipher C        aes-256-gcm (default), chacha20-poly1305 or\n"
		"                    aes-256-cbc-hmac-sha256\n"
		"  --segment-size N  bytes per sealed segment (default 64K); the\n"
		"                    suffixes K, KiB, M and MiB are accepted\n"
		"  --force           make a new keyring beside orphaned objects\n"},
	{"config", cmd_config, "show or change store settings",
		"config [KEY [VALUE]]\n\n"
		"Without KEY, print every setting as 'key = value'; with KEY, print\n"
		"its value; with KEY VALUE, change it.  Keys: cipher, segment-size,\n"
		"rotate-days, force-days.  Settings apply to new writes only; they\n"
		"live in the keyring, under its MAC.  Without a master key they are\n"
		"shown as written, not authenticated (a note on stderr says so).\n"
		"With --tenant, the tenant's own settings.\n"},
	{"put", cmd_put, "encrypt FILE (default stdin) into NAME; -r: a directory",
		"put [--meta KEY=VALUE]... [--meta-file F]... NAME [FILE]\n\n"
		"Encrypt FILE (standard input when absent or '-') into the object\n"
		"NAME, atomically: on any failure nothing is stored.  Creates the\n"
		"store when it does not exist.\n\n"
		"  --meta KEY=VALUE  attach encrypted metadata (repeatable); the\n"
		"                    value is on the command line, which other users\n"
		"                    of this machine can see (ps): use --meta-file\n"
		"                    for anything sensitive\n"
		"  --meta-file F     read metadata from F, one KEY=VALUE per line\n"
		"                    (empty lines skipped; '-' for standard input,\n"
		"                    then FILE must be given); repeatable, kept in\n"
		"                    order with --meta\n\n"
		"put -r [--parent OLD | --full] [--xattrs] [--checksum] DIR NAME\n\n"
		"Store the directory tree DIR as snapshot NAME: files, directories,\n"
		"symbolic links (never followed), hard links, FIFOs and devices, with\n"
		"modes, owners and nanosecond mtimes; sockets are skipped and said.\n"
		"Files are sealed and written in parallel; an authenticated manifest\n"
		"is published last, so a failure leaves no snapshot.  Files unchanged\n"
		"since the parent (by default the newest snapshot under NAME's prefix\n"
		"up to its last '/') are shared with it, not written again.\n\n"
		"  --parent OLD  share unchanged files with snapshot OLD\n"
		"  --full        share nothing\n"
		"  --xattrs      store extended attributes too\n"
		"  --checksum    confirm unchanged-looking files by their keyed hash\n"
		"                instead of trusting size and mtime\n"},
	{"get", cmd_get, "decrypt NAME to FILE (default stdout); -r: a snapshot",
		"get NAME [-o FILE] [--range START-END]\n\n"
		"Decrypt and authenticate NAME.  With -o, FILE is replaced only once\n"
		"the whole object verified; on failure nothing is left at FILE and\n"
		"an existing FILE is untouched.  Without -o, plaintext goes to\n"
		"standard output segment by segment as each one verifies: after a\n"
		"failure (non-zero exit) the output so far is incomplete.\n\n"
		"  -o, --output FILE  write to FILE (created with mode 0600)\n"
		"  --range START-END  only bytes START to END of the plaintext, both\n"
		"                     included, as HTTP counts them (START- to the\n"
		"                     end, -N the last N bytes); only the segments\n"
		"                     holding them are read and authenticated\n\n"
		"get -r [--min-seq N] [--owners | --no-owners] [--no-xattrs]\n"
		"       [--no-sync] NAME DIR\n\n"
		"Restore snapshot NAME as the new directory DIR (or into an empty\n"
		"one).  The tree is built beside DIR and renamed to it only after\n"
		"every file verified: on any failure nothing appears at DIR.  Owners\n"
		"are restored when run as root.\n\n"
		"  --min-seq N  refuse a snapshot with a sequence number below N\n"
		"  --owners     restore owners (needs the privilege); --no-owners: never\n"
		"  --no-xattrs  leave stored extended attributes out\n"
		"  --no-sync    do not flush the tree to disk before renaming it\n"},
	{"encrypt", cmd_encrypt, "encrypt IN (default stdin) to a standalone file",
		"encrypt [-o OUT] [--cipher C] [--segment-size N] [IN]\n\n"
		"Encrypt IN (standard input when absent or '-') into a standalone\n"
		"file: its data key travels in its header, wrapped by the master key,\n"
		"so it needs no store and decrypts anywhere with the same master key.\n"
		"Output goes to standard output (never a terminal) or, with -o, to an\n"
		"unnamed file beside OUT that is synced and named OUT only when\n"
		"everything succeeded: on failure nothing is left at OUT and an\n"
		"existing OUT is untouched.  No store is opened.\n\n"
		"  -o, --output OUT  write to OUT (created with mode 0600)\n"
		"  --cipher C        aes-256-gcm (default), chacha20-poly1305 or\n"
		"                    aes-256-cbc-hmac-sha256\n"
		"  --segment-size N  plaintext bytes per sealed segment (default 64K)\n\n"
		"The master key comes from ATREST_KEY, ATREST_KEY_FILE,\n"
		"ATREST_PASSPHRASE (a new salt per file) or ATREST_KEY_URI.\n"},
	{"decrypt", cmd_decrypt, "decrypt a standalone file to OUT (default stdout)",
		"decrypt [-o OUT] [IN]\n\n"
		"Decrypt and authenticate a file made by 'atrest encrypt' (IN, or\n"
		"standard input when absent or '-').  With -o, OUT is replaced only\n"
		"after the whole file verified; on failure nothing is left at OUT and\n"
		"an existing OUT is untouched.  Without -o, plaintext goes to standard\n"
		"output a batch of verified segments at a time, so after a failure\n"
		"(non-zero exit status) the output so far is incomplete: discard it.\n\n"
		"  -o, --output OUT  write to OUT (created with mode 0600)\n\n"
		"Exit status 4: the file was modified, truncated or extended, or is\n"
		"not a standalone atrest file (a store object is refused).  Exit\n"
		"status 5: no master key, or not the one the file names.\n"},
	{"ls", cmd_ls, "list objects; -r: a snapshot's entries",
		"ls [-l [-h]] [-0] [--json] [PREFIX]\n\n"
		"List the objects whose names start with PREFIX, one per line.  Names\n"
		"are not secret: without a master key in the environment the list is\n"
		"read without one (-l needs it).\n\n"
		"  -l, --long      a header row, then per object: SIZE (plaintext\n"
		"                  bytes), STORED (bytes on disk), MODIFIED (UTC),\n"
		"                  CIPHER, KEY (data key id) and NAME, each header\n"
		"                  authenticated; then a total line\n"
		"  -h, --human-readable  with -l, sizes as 1.5K, 12M, 3.2G (powers\n"
		"                  of 1024)\n"
		"  -0, --null      end each entry with a NUL byte instead of a\n"
		"                  newline, with no header or total (for xargs -0)\n"
		"  --json          a JSON array of {name, stored_size, mtime}, with -l\n"
		"                  also size, cipher, data_key_id and meta\n"
		"  --help          this help\n\n"
		"ls -r NAME [-l] [--json]\n\n"
		"List the entries of snapshot NAME (its manifest is authenticated);\n"
		"-l: mode, uid, gid, size, mtime and path; --json: the snapshot and\n"
		"its entries as one JSON object.\n"},
	{"rm", cmd_rm, "delete an object or a snapshot",
		"rm NAME...\n"
		"       atrest rm --prefix PREFIX\n"
		"       atrest rm -r NAME\n\n"
		"Delete the objects NAME...  Exit status 3 when one does not exist\n"
		"(the others are still deleted).\n\n"
		"  --prefix PREFIX  delete every object whose name starts with PREFIX\n"
		"                   (not empty: 'atrest ls PREFIX' shows what goes)\n"
		"  -r, --recursive  remove snapshot NAME: its manifest first (the\n"
		"                   snapshot is gone at once), then its objects that\n"
		"                   no other snapshot shares\n"},
	{"inspect", cmd_inspect, "show header facts without any key",
		"inspect NAME|PATH [--json]\n\n"
		"Show an object's header (version, cipher, segment size, data key\n"
		"id, sizes, context) without a key and without opening the store.\n"
		"PATH is used when it names an existing file, else the object NAME\n"
		"of the store.  Nothing shown is authenticated.\n\n"
		"  --json  one JSON object\n"},
	{"verify", cmd_verify, "authenticate every object; -r: a snapshot",
		"verify [PREFIX]\n\n"
		"Read and authenticate every object whose name starts with PREFIX.\n"
		"Failures are printed as 'NAME: reason' on stderr, then a summary\n"
		"line on stdout.  Without PREFIX the per-key usage counts are reset\n"
		"to a full count.  Exit status: 0, or that of the first failure.\n\n"
		"verify -r NAME\n\n"
		"Check snapshot NAME: every object it pins is there in the version it\n"
		"recorded, every byte authenticates, every file matches its keyed hash\n"
		"and no object was added to its set.  Failures name the file.\n"},
	{"keys", cmd_keys, "list, expose or destroy data keys",
		"keys [--json] [--scan]\n"
		"       atrest keys expose ID\n"
		"       atrest keys destroy ID [--force]\n\n"
		"Without an action, list the store's data keys, oldest first: id,\n"
		"status (active, retired, exposed, destroyed), creation time (UTC)\n"
		"and the objects and plaintext bytes sealed under each, from the\n"
		"store's usage counts (kept by every put and delete; no scan).\n"
		"Without a master key in the environment, the keyring's record is\n"
		"shown unauthenticated and without counts.\n"
		"Exposed keys still in use are warned about.\n\n"
		"  --scan      count by reading every header, and reset the store's\n"
		"              counts to the result (also done by a full 'verify')\n"
		"  expose ID   mark data key ID compromised (an active key is\n"
		"              rotated away first); then 'atrest reencrypt'\n"
		"  destroy ID  wipe data key ID from the keyring: its objects can\n"
		"              never be read again.  Refused while objects use it\n"
		"  --force     destroy even while objects use it (crypto-shredding)\n"
		"  --json      the list as a JSON array of {id, status, created,\n"
		"              objects, bytes}\n"},
	{"key-check", cmd_keycheck, "check the master key against the keyring",
		"key-check [--time N] [--json]\n\n"
		"Tell whether the master key (ATREST_KEY, ATREST_KEY_FILE,\n"
		"ATREST_PASSPHRASE or ATREST_KEY_URI) can be reached and is the one\n"
		"the store's keyring is wrapped with.  Only the keyring is read; no\n"
		"object is touched.  With --tenant T, tenant T's keyring instead.\n"
		"Exit status 0 when it is, 5 when it is another key or its provider\n"
		"(HSM, key server, TPM) cannot be reached.\n\n"
		"  --time N  then wrap and unwrap a random key N times and show the\n"
		"            median and 99th percentile latency of each\n"
		"  --json    one JSON object\n"},
	{"rotate", cmd_rotate, "start a new active data key",
		"rotate\n\n"
		"Start a new active data key for new writes.  Objects sealed under\n"
		"older keys stay readable; 'atrest reencrypt' moves them.\n"},
	{"rewrap", cmd_rewrap, "rewrap the keyring under the current master key",
		"rewrap\n\n"
		"Wrap every data key under the current master key (ATREST_KEY, ...),\n"
		"unwrapping with the previous one (ATREST_OLD_KEY, ...) when set.\n"
		"No object is rewritten: the cost depends on the number of data\n"
		"keys only.  Afterwards only the current master key opens the store.\n"},
	{"reencrypt", cmd_reencrypt, "re-encrypt the objects under a data key",
		"reencrypt --data-key ID [PREFIX]\n\n"
		"Re-encrypt every object sealed under data key ID (and whose name\n"
		"starts with PREFIX) with the active data key, one atomic put per\n"
		"object.  Resumable: after a crash, run it again.  A progress bar\n"
		"is drawn on a terminal; a summary line goes to stdout.  Exit\n"
		"status: 0, or that of the failure when any object failed.\n\n"
		"  --data-key ID  the data key to move objects off\n"},
	{"migrate", cmd_migrate, "encrypt plaintext files in place",
		"migrate [PREFIX]\n\n"
		"Encrypt in place every plaintext (non-atrest) file of the store\n"
		"whose name starts with PREFIX, one atomic put per file, so that a\n"
		"crash leaves each file either plaintext or encrypted.  Creates the\n"
		"store in an existing directory of checkpoints.  Resumable.\n"},
	{"audit", cmd_audit, "verify the audit trail, export its public key",
		"audit verify [--pubkey F] [--min-seq N] [DIR|FILE]\n"
		"       atrest audit pubkey [--hex] [-o FILE]\n\n"
		"verify: check the audit log (default the store's .atrest/audit/, or\n"
		"$ATREST_AUDIT) with the public key alone: every line must follow the\n"
		"one before it, every signed head must verify, and nothing may follow\n"
		"the last signed head.  No master key is needed.  Exit status 0 when\n"
		"intact (prints how many lines were verified and the last signed\n"
		"head), 4 naming the first bad line otherwise.\n\n"
		"  --pubkey F   the public key (PEM or 64 hex digits) from 'atrest\n"
		"               audit pubkey'; without it the key is read from the\n"
		"               store's keyring, unauthenticated\n"
		"  --min-seq N  fail when the last signed head is older than sequence\n"
		"               N (a head recorded earlier: detects a replayed log)\n\n"
		"pubkey: print the audit trail's Ed25519 public key (PEM, or --hex),\n"
		"read from the keyring with the master key (made when missing).\n\n"
		"  --hex        64 hex digits instead of PEM\n"
		"  -o, --output FILE  write it to FILE\n"},
	{"stats", cmd_stats, "show the metrics and key facts of a store",
		"stats [--json|--prometheus]\n\n"
		"Show the store's settings, data keys (status, age, objects and\n"
		"bytes from the store's usage counts) and audit location.\n\n"
		"  --json        one JSON object\n"
		"  --prometheus  the library's metrics in Prometheus text format\n"
		"                (counters of this process, gauges of the store)\n"},
	{"tenant", cmd_tenant, "add, list or shred tenants",
		"tenant add T [--key-uri URI | --key-file F]\n"
		"       atrest tenant list [--json]\n"
		"       atrest tenant shred T\n\n"
		"Tenants have their own namespace of objects (no tenant sees another's\n"
		"names) and their own keyring: data keys, rotation, destruction and\n"
		"settings.  Work on one with the global option --tenant T.\n\n"
		"  add T        a new tenant, wrapped by the store's master key or by\n"
		"               its own: --key-uri URI (keep PINs out of it) or\n"
		"               --key-file F (a 0600 key file).  Only the reference\n"
		"               is kept, in the store's keyring; never the key\n"
		"  list         name, keyring id and master key of each tenant\n"
		"  shred T      crypto-shred T: destroy every data key of T (its\n"
		"               objects are unreadable from that moment), then remove\n"
		"               its objects and keyring.  Run again if interrupted\n"},
	{"upload", cmd_upload, "multipart uploads: make, list, abort, clean up",
		"upload list [PREFIX] [--json]\n"
		"       atrest upload abort NAME UPLOAD_ID\n"
		"       atrest upload cleanup --older-than DUR\n"
		"       atrest upload create NAME\n"
		"       atrest upload part NAME UPLOAD_ID NUMBER [FILE]\n"
		"       atrest upload complete [--if-absent] NAME UPLOAD_ID NUMBER...\n\n"
		"Multipart uploads (made through the library, the S3 front end or\n"
		"these commands): parts are sealed and stored as they arrive, but\n"
		"nothing is visible under NAME until the upload completes; then NAME\n"
		"reads, ranges, verifies and deletes like any object.\n\n"
		"  list      every upload in progress whose object name starts with\n"
		"            PREFIX: initiation time (UTC), upload id and name;\n"
		"            --json: an array of {name, upload_id, initiated}\n"
		"  abort     drop upload UPLOAD_ID of NAME and its parts (exit\n"
		"            status 3 when there is none)\n"
		"  cleanup   abort every upload initiated more than DUR ago (seconds,\n"
		"            or with a unit: 30m, 12h, 7d), and remove what crashed\n"
		"            uploads and deletes left; prints how many went\n"
		"  create    start an upload of NAME; prints its UPLOAD_ID\n"
		"  part      seal FILE (or standard input) as part NUMBER (1 to\n"
		"            10000); a part uploaded again replaces the earlier one\n"
		"  complete  publish NAME from the parts NUMBER... (increasing); the\n"
		"            parts not named are removed.  --if-absent: exit status 1\n"
		"            (exists) when NAME exists, publishing nothing\n"},
	{"snapshot", cmd_snapshot, "list snapshots, or the newest under a prefix",
		"snapshot list [PREFIX] [--json]\n"
		"       atrest snapshot latest PREFIX [--min-seq N] [--json]\n\n"
		"list    every snapshot whose name starts with PREFIX: sequence,\n"
		"        time (UTC), name and parent\n"
		"latest  the snapshot with the highest sequence number under PREFIX,\n"
		"        as 'NAME SEQ'; with --min-seq N, exit status 4 when that\n"
		"        number is below N (the store was rolled back, or newer\n"
		"        snapshots were removed)\n"},
	{"gc", cmd_gc, "remove snapshot objects no snapshot references",
		"gc [--grace SECONDS] [--ttl SECONDS] [--dry-run]\n\n"
		"Remove every snapshot object that no snapshot references.  Safe while\n"
		"snapshots are written, read and removed: objects a writer may still\n"
		"use are kept (see docs/OPERATIONS.md).\n\n"
		"  --grace S  keep unreferenced objects younger than S seconds (3600)\n"
		"  --ttl S    writers wait for this gc until it has not renewed its\n"
		"             marker for S seconds (60)\n"
		"  --dry-run  count what would be removed, remove nothing\n"},
	{"bench", cmd_bench, "measure performance against same-run references",
		"bench [ARGS]\n\n"
		"Run atrest-bench, the benchmark program installed beside atrest, with\n"
		"ARGS; 'atrest bench --help' shows its options.\n"},
	{"apikey", cmd_apikey, "create, list or revoke server API keys",
		"apikey create [--tenant T] --role reader|writer|admin [--name N] [--json]\n"
		"       atrest apikey list [--json]\n"
		"       atrest apikey revoke ID\n\n"
		"API keys of 'atrest server'.  create prints a new random key once,\n"
		"alone on the last line of standard output (with --json, one object\n"
		"{\"id\", \"key\", \"tenant\", \"role\", \"name\"}); only a salted hash\n"
		"of it is kept, with its id, tenant, role and name.  list shows the\n"
		"keys (never the keys themselves); revoke ID removes one.  A running\n"
		"server picks up every change within a second.\n\n"
		"  --tenant T    the tenant the key acts for (default: the global\n"
		"                --tenant, else the default tenant)\n"
		"  --role R      reader (GET, HEAD, list), writer (and PUT, DELETE)\n"
		"                or admin (and /v1/keys)\n"
		"  --name N      a label for people, e.g. the engine using the key\n"
		"  --file F      the key file (default <store>/.atrest/apikeys,\n"
		"                mode 0600)\n"
		"  --json        JSON output\n"},
	{"s3key", cmd_s3key, "create, list or revoke S3 access keys of the server",
		"s3key create [--tenant T] --role reader|writer|admin [--name N] [--json]\n"
		"       atrest s3key list [--json]\n"
		"       atrest s3key revoke ACCESS_KEY_ID\n\n"
		"Access keys of the S3-compatible API of 'atrest server' (--s3-port).\n"
		"create prints a new access key id and secret access key once (with\n"
		"--json, one object {\"access_key_id\", \"secret_access_key\",\n"
		"\"tenant\", \"role\", \"name\"}).  Checking a SigV4 signature needs\n"
		"the secret, so it is kept sealed with the store's keys (under its\n"
		"master key, which create needs), never in plaintext.  list shows the\n"
		"keys (never the secrets); revoke removes one.  A running server\n"
		"picks up every change within a second.\n\n"
		"  --tenant T    the tenant the key acts for (its buckets)\n"
		"  --role R      reader (GET, HEAD, list), writer (and PUT, DELETE,\n"
		"                buckets) or admin\n"
		"  --name N      a label for people, e.g. the engine using the key\n"
		"  --file F      the key file (default <store>/.atrest/s3keys,\n"
		"                mode 0600)\n"
		"  --json        JSON output\n"},
	{"gen-cert", cmd_gen_cert, "write a self-signed TLS certificate for development",
		"gen-cert --common-name CN [--ip A]... [--dns N]... -o DIR\n\n"
		"Write DIR/cert.pem (a self-signed ECDSA P-256 certificate valid for\n"
		"a year, with CN and every --ip and --dns as subject alternative\n"
		"names) and DIR/key.pem (mode 0600).  DIR is created (mode 0700) when\n"
		"missing; existing files are never overwritten.  For development and\n"
		"tests: production certificates come from your CA.\n\n"
		"  --common-name CN  the subject's common name (also a DNS name)\n"
		"  --ip A            an IPv4 or IPv6 address the server answers on\n"
		"  --dns N           a DNS name the server answers to\n"
		"  -o, --output DIR  where to write cert.pem and key.pem\n"},
#ifdef ATREST_WITH_SERVER
	{"server", cmd_server, "run the REST server (TLS, API keys, tenants)",
		"server --port P [--state-dir DIR] [--listen ADDR]\n"
		"       [--api-key KEY | --api-keys-file F]\n"
		"       [--tls-cert F --tls-key F | --insecure-http] [OPTIONS]\n\n"
		"Serve a store over HTTP: PUT, GET, HEAD and DELETE of\n"
		"/v1/checkpoints/NAME, listing, /healthz, /readyz, /metrics and\n"
		"/v1/keys (docs/SERVER.md).  Every request but /healthz and /readyz\n"
		"needs an API key ('atrest apikey create'); the key's tenant is the\n"
		"namespace and keyring it acts in ('atrest tenant add').  The store's\n"
		"master key comes from the environment, as for every command; a tenant\n"
		"with its own master key uses the one its registry entry names.  One\n"
		"line on standard error tells the cipher, master key and address.\n"
		"SIGTERM or SIGINT: stop accepting, finish requests in flight, exit 0.\n"
		"SIGHUP: reload API keys and TLS certificates.\n\n"
		"  --port P              TCP port (0: any free port, shown at startup)\n"
		"  --state-dir DIR       the server's files (API keys, keyring\n"
		"                        generations seen) in DIR/.atrest/; the store\n"
		"                        served is DIR unless --store or ATREST_STORE\n"
		"                        names one (default: the store's directory)\n"
		"  --listen ADDR         numeric IPv4 or IPv6 address (127.0.0.1)\n"
		"  --api-key KEY         one admin key for the default tenant (prefer\n"
		"                        ATREST_API_KEY: argv is visible to others)\n"
		"  --api-keys-file F     key file (default DIR/.atrest/apikeys)\n"
		"  --tls-cert F          PEM certificate (chain); TLS 1.2 and 1.3 only\n"
		"  --tls-key F           its PEM private key\n"
		"  --insecure-http       allow plain HTTP on a non-loopback address\n"
		"  --max-object-size N   largest PUT body (default 64G; K, M, G, T)\n"
		"  --max-connections N   open connections at most (default 1024)\n"
		"  --max-connections-per-ip N  per client address (default: no limit)\n"
		"  --idle-timeout S      close a connection idle S seconds (60)\n"
		"  --header-timeout S    a request head must arrive within S s (30)\n"
		"  --drain-timeout S     SIGTERM waits S s for requests (30)\n"
		"  --threads N           threads sealing and opening large objects,\n"
		"                        shared by every tenant (default: CPUs)\n"
		"  --s3-port P           also serve the S3-compatible API on port P\n"
		"                        (docs/S3.md; access keys: 'atrest s3key')\n"
		"  --s3-keys-file F      S3 key file (default DIR/.atrest/s3keys)\n"
		"  --s3-region R         the region clients sign for (us-east-1)\n"
		"  --s3-domain D         also take virtual-host style requests for\n"
		"                        BUCKET.D\n\n"
		"Exit status: 0 after SIGTERM or SIGINT, 1 error, 2 bad configuration,\n"
		"5 master key missing, wrong or unreachable.\n"},
#endif
	{"help", cmd_help, "show the help of a command",
		"help [COMMAND]\n\nShow the help of COMMAND, or the overview.\n"},
};

const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

const char cli_global_usage[] =
	"usage: atrest [--store LOCATION] [--tenant T] [--allow-plaintext] [--json] "
	"COMMAND [ARGS]\n\n"
	"Keeps checkpoints encrypted and authenticated at rest.\n\n"
	"global options:\n"
	"  --store LOCATION   the store: a directory, file:///dir or\n"
	"                     s3://BUCKET/PREFIX (AWS_* settings; README) (default\n"
	"                     $ATREST_STORE, else ./atrest-store)\n"
	"  --tenant T         work on tenant T's objects and keys ('atrest\n"
	"                     tenant add' makes tenants)\n"
	"  --allow-plaintext  return non-atrest files as they are (migration;\n"
	"                     also ATREST_ALLOW_PLAINTEXT=1)\n"
	"  --json             JSON output, for the commands that have it\n"
	"  -h, --help         this help; 'atrest COMMAND --help' for a "
	"command's\n"
	"  --version          print the version\n"
	"The global options may also follow the command (atrest ls --store S).\n\n";

static const char global_env[] =
	"\nmaster key, from the environment only (never the command line):\n"
	"  ATREST_KEY         64 hex digits or base64 of 32 bytes\n"
	"  ATREST_KEY_FILE    a file (mode 0600) holding such a key\n"
	"  ATREST_PASSPHRASE  a passphrase (Argon2id)\n";

static const char global_env_end[] =
	"  ATREST_OLD_KEY, ATREST_OLD_KEY_FILE, ...  the previous master key\n"
	"  ATREST_KDF_ALLOW_COSTLY=1  accept passphrase parameters (from a keyring\n"
	"                     or file) costlier than atrest writes\n\n"
	"exit status: 0 ok, 1 other error, 2 usage, 3 not found, 4 integrity\n"
	"failure, 5 key error (a key service that cannot be used included)\n";

/* The ATREST_KEY_URI lines: the schemes this libatrest was built with. */
static void write_uri_schemes(FILE *f)
{
	const char *const *s = atrest_keyprov_schemes();
	int col = 0;

	fputs("  ATREST_KEY_URI     a key provider URI", f);
	if (!*s) {
		fputs(" (no schemes built in)\n", f);
		return;
	}
	fputs(", built in:", f);
	col = 50;
	for (int i = 0; s[i]; i++) {
		if (col + (int)strlen(s[i]) + 2 > 72) {
			fputs("\n                    ", f);
			col = 20;
		}
		col += fprintf(f, " %s%s", s[i], s[i + 1] ? "," : "\n");
	}
}

void cli_write_global_env(FILE *f)
{
	fputs(global_env, f);
	write_uri_schemes(f);
	fputs(global_env_end, f);
}

void cli_print_global_usage(void)
{
	size_t i;

	fputs(cli_global_usage, stdout);
	fputs("commands:\n", stdout);
	for (i = 0; i < cli_ncommands; i++)
		printf("  %-9s %s\n", cli_commands[i].name, cli_commands[i].summary);
	cli_write_global_env(stdout);
}

const struct cli_cmd *cli_find_command(const char *name)
{
	size_t i;

	for (i = 0; i < cli_ncommands; i++)
		if (!strcmp(cli_commands[i].name, name))
			return &cli_commands[i];
	return NULL;
}

int cmd_help(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const struct cli_cmd *cmd;
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'h')
			return cli_help(ctx->cmd);
		return CLI_USAGE;
	}
	if (optind == argc) {
		cli_print_global_usage();
		return CLI_OK;
	}
	if (optind + 1 < argc)
		return cli_usage_err(ctx, "too many arguments");
	cmd = cli_find_command(argv[optind]);
	if (!cmd)
		return cli_usage_err(ctx, "unknown command '%s'", argv[optind]);
	return cli_help(cmd);
}
