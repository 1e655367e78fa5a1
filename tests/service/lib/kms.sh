# Contract servers of the cloud KMS tests, started with what the tests
# need (sourced after svc.sh).  Each NAME_up starts one on the test CA
# ($T/ca), exports the environment that points atrest at it, and sets the
# variables the tests use (its state dir, its key URI, the test's own
# secrets appended to $T/test-secrets).
[ -f "$T/ca/ca.pem" ] || "$SVC_LIB/testca" "$T/ca"
: >>"$T/test-secrets"

secret() {
	s=$(openssl rand -hex "${1:-20}")
	echo "$s" >>"$T/test-secrets"
	echo "$s"
}

aws_up() {
	ACCOUNT=111122223333
	KID=1234abcd-12ab-34cd-56ef-1234567890ab
	KID2=0987dcba-09fe-87dc-65ba-ab0987654321
	AK=AKIAATRESTTEST000001
	SK=$(secret 30)
	AK_NOBODY=AKIAATRESTNOBODY0001
	SK_NOBODY=$(secret 30)
	CTOKEN=$(secret 24)
	ARN="arn:aws:kms:us-east-1:$ACCOUNT:key/$KID"
	cat >"$T/aws.json" <<JSON
{"region": "us-east-1", "account": "$ACCOUNT",
 "users": {"$AK": {"secret": "$SK", "name": "atrest"},
           "$AK_NOBODY": {"secret": "$SK_NOBODY", "name": "nobody"}},
 "keys": {"$KID": {"aliases": ["alias/atrest"],
                   "allow": {"atrest": ["Encrypt", "Decrypt"],
                             "instance": ["Encrypt", "Decrypt"]}},
          "$KID2": {"allow": {"atrest": ["Encrypt", "Decrypt"]}}},
 "metadata": {"role": "atrest-role", "user": "instance", "lifetime": 3600,
              "container_token": "$CTOKEN"}}
JSON
	svc_up aws_kms "$T/aws" "$T/aws.json" "$T/ca"
	A="$T/aws"
	export AWS_CA_BUNDLE="$T/ca/ca.pem"
	export AWS_ENDPOINT_URL_KMS="https://127.0.0.1:$(port "$A")"
	export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
	AWS_URI="aws-kms://$ARN"
}

# gcp_key_file OUT PRIVKEY KID EMAIL: a service-account key file as Google issues them.
gcp_key_file() {
	$PY - "$@" "https://127.0.0.1:$(port "$G")/token" <<'PY'
import json, sys
out, key, kid, email, uri = sys.argv[1:]
json.dump({"type": "service_account", "project_id": "atrest-test",
           "private_key_id": kid, "private_key": open(key).read(),
           "client_email": email, "client_id": "1234567890",
           "auth_uri": "https://accounts.google.com/o/oauth2/auth",
           "token_uri": uri}, open(out, "w"), indent=2)
PY
	chmod 600 "$1"
}

gcp_up() {
	GCP_NAME=projects/atrest-test/locations/europe-west1/keyRings/ring/cryptoKeys/kek
	GCP_NAME2=projects/atrest-test/locations/europe-west1/keyRings/ring/cryptoKeys/other
	SA=atrest@atrest-test.iam.gserviceaccount.com
	SA2=nobody@atrest-test.iam.gserviceaccount.com
	for k in sa sa2; do
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/$k.key" 2>/dev/null
		openssl pkey -in "$T/$k.key" -pubout -out "$T/$k.pub"
		grep -v -- '-----' "$T/$k.key" >>"$T/test-secrets"
	done
	CSECRET=$(secret 20)
	RTOKEN=$(secret 32)
	$PY - "$T" "$CSECRET" "$RTOKEN" "$GCP_NAME" "$GCP_NAME2" <<'PY'
import json, sys
t, csecret, rtoken, name, name2 = sys.argv[1:]
sa, sa2 = "atrest@atrest-test.iam.gserviceaccount.com", "nobody@atrest-test.iam.gserviceaccount.com"
json.dump({
    "service_accounts": {sa: {"public_key": open(t + "/sa.pub").read(), "key_id": "kid-1"},
                         sa2: {"public_key": open(t + "/sa2.pub").read(), "key_id": "kid-2"}},
    "authorized_users": {"client-1.apps.googleusercontent.com": {
        "secret": csecret, "refresh_token": rtoken, "email": "operator@example.com"}},
    "metadata_email": "vm@atrest-test.iam.gserviceaccount.com",
    "keys": {name: {"allow": [sa, "operator@example.com",
                              "vm@atrest-test.iam.gserviceaccount.com"]},
             name2: {"allow": [sa]}}}, open(t + "/gcp.json", "w"))
PY
	svc_up gcp_kms "$T/gcp" "$T/gcp.json" "$T/ca"
	G="$T/gcp"
	gcp_key_file "$T/sa.json" "$T/sa.key" kid-1 "$SA"
	export ATREST_CA_BUNDLE="$T/ca/ca.pem"
	export ATREST_GCP_KMS_ENDPOINT="https://127.0.0.1:$(port "$G")"
	export GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json"
	GCP_URI="gcp-kms://$GCP_NAME"
}

azure_up() {
	TENANT=72f988bf-86f1-41af-91ab-2d7cd011db47
	SECRET1=$(secret 24)
	SECRET2=$(secret 24)
	IDHEADER=$(secret 16)
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k8s.key" 2>/dev/null
	openssl pkey -in "$T/k8s.key" -pubout -out "$T/k8s.pub"
	$PY - "$T" "$TENANT" "$SECRET1" "$SECRET2" "$IDHEADER" <<'PY'
import json, sys
t, tenant, s1, s2, idh = sys.argv[1:]
ops = ["wrapKey", "unwrapKey"]
json.dump({"tenant": tenant,
           "clients": {"app-1": {"secret": s1}, "app-2": {"secret": s2},
                       "app-fed": {"federated": {
                           "issuer": "https://oidc.example.test/cluster",
                           "subject": "system:serviceaccount:default:atrest",
                           "public_key": open(t + "/k8s.pub").read()}}},
           "managed_identity": {"client_id": "mi-1", "identity_header": idh},
           "keys": {"kek": {"kty": "RSA", "allow": {"app-1": ops, "app-fed": ops, "mi-1": ops}},
                    "other": {"kty": "RSA", "allow": {"app-1": ops}},
                    "hsmkek": {"kty": "oct", "allow": {"app-1": ops}}}},
          open(t + "/azure.json", "w"))
PY
	svc_up azure_kv "$T/az" "$T/azure.json" "$T/ca"
	Z="$T/az"
	export ATREST_CA_BUNDLE="$T/ca/ca.pem"
	export AZURE_AUTHORITY_HOST="https://127.0.0.1:$(port "$Z")"
	export AZURE_TENANT_ID=$TENANT AZURE_CLIENT_ID=app-1 AZURE_CLIENT_SECRET=$SECRET1
	AZURE_URI="azure-kv://127.0.0.1:$(port "$Z")/keys/kek"
}

vault_up() {
	ATOK=hvs.$(secret 16)
	NOTOK=hvs.$(secret 16)
	SID=$(secret 16)
	SID2=$(secret 16)
	SIDNS=$(secret 16)
	cat >"$T/vault.json" <<JSON
{"policies": {"atrest": {"transit/encrypt/kek": ["update"], "transit/decrypt/kek": ["update"],
                         "transit/rewrap/kek": ["update"], "transit/encrypt/dkek": ["update"],
                         "transit/decrypt/dkek": ["update"]},
              "none": {}},
 "tokens": {"$ATOK": {"policies": ["atrest"], "ttl": 3600, "renewable": true},
            "$NOTOK": {"policies": ["none"], "ttl": 3600}},
 "approle": {"role-1": {"secret_id": "$SID", "policies": ["atrest"], "ttl": 3600},
             "role-short": {"secret_id": "$SID2", "policies": ["atrest"], "ttl": 4},
             "role-ns": {"secret_id": "$SIDNS", "policies": ["atrest"], "ttl": 3600,
                         "namespace": "team-a"}},
 "keys": {"transit/kek": {}, "transit/dkek": {"derived": true}, "team-a|transit/kek": {}}}
JSON
	svc_up vault "$T/vault" "$T/vault.json" "$T/ca"
	V="$T/vault"
	export VAULT_CACERT="$T/ca/ca.pem"
	export VAULT_TOKEN=$ATOK
	VAULT_URI="vault://127.0.0.1:$(port "$V")/transit/keys/kek"
}
