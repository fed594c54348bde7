#!/usr/bin/env bash
# Test certificates for Redis over TLS, made fresh by each test (nothing secret is committed):
#   make_test_certs.sh DIR
# DIR/ca.{crt,key}         the CA the clients trust
# DIR/server.{crt,key}     redis-server's certificate: CN localhost, SAN IP:127.0.0.1 and DNS:localhost
# DIR/client.{crt,key}     a client certificate (mutual TLS, tls-auth-clients yes)
# DIR/expired.crt          the server's key, certified for one day in 2020
# DIR/other-ca.crt         a CA nobody signed with (a wrong REDIS_TLS_CA)
set -euo pipefail
D=$1
mkdir -p "$D"
cd "$D"
q() { "$@" >/dev/null 2>&1 || { echo "make_test_certs: $* failed" >&2; "$@"; exit 1; }; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3 -subj /CN=streamfleet-test-ca
q openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 3 -subj /CN=other-ca
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
printf 'extendedKeyUsage=clientAuth\n' >client.ext
q openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost
q openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 3 -extfile server.ext
q openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=streamfleet-client
q openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 3 -extfile client.ext
# An expired certificate needs explicit dates: `openssl ca` takes them (x509 -req does not in OpenSSL 3.0).
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = $D/ca-db
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
[server_ext]
subjectAltName = IP:127.0.0.1,DNS:localhost
CNF
q openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in server.csr -out expired.crt \
  -startdate 20200101000000Z -enddate 20200102000000Z -extensions server_ext
chmod 600 ./*.key
