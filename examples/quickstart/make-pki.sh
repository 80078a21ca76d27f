#!/usr/bin/env bash
# Makes a small PKI with openssl for trying certgate with your own tools:
#   ca/root.pem (+key), ca/intermediate.pem (+key), tls/server.pem for localhost,
#   clients/alice.pem with the UPN otherName and email in the SAN (as Intune or
#   AD CS user certificates carry them), and an empty CRL for each CA.
# Usage: ./make-pki.sh [DIR]   (default: the folder of this script)
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")" && pwd)}
mkdir -p "$dir"/ca "$dir"/tls "$dir"/clients "$dir"/crl
cd "$dir"
umask 077

cat > openssl.cnf <<'CNF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ root_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ inter_ext ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server_ext ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@contoso.com, email:alice@contoso.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca_db ]
database = crl/index-CA.txt
crlnumber = crl/crlnumber-CA
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid
CNF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca/root-key.pem
openssl req -new -x509 -config openssl.cnf -key ca/root-key.pem -subj "/CN=Quickstart Root CA" \
  -days 3650 -extensions root_ext -out ca/root.pem

key ca/intermediate-key.pem
openssl req -new -config openssl.cnf -key ca/intermediate-key.pem -subj "/CN=Quickstart Intermediate CA" -out ca/intermediate.csr
openssl x509 -req -in ca/intermediate.csr -CA ca/root.pem -CAkey ca/root-key.pem -CAcreateserial \
  -days 1825 -extfile openssl.cnf -extensions inter_ext -out ca/intermediate.pem 2>/dev/null

key tls/server-key.pem
openssl req -new -config openssl.cnf -key tls/server-key.pem -subj "/CN=localhost" -out tls/server.csr
openssl x509 -req -in tls/server.csr -CA ca/intermediate.pem -CAkey ca/intermediate-key.pem -CAcreateserial \
  -days 365 -extfile openssl.cnf -extensions server_ext -out tls/server-leaf.pem 2>/dev/null
cat tls/server-leaf.pem ca/intermediate.pem > tls/server.pem

key clients/alice-key.pem
openssl req -new -config openssl.cnf -key clients/alice-key.pem -subj "/CN=Alice Smith" -out clients/alice.csr
openssl x509 -req -in clients/alice.csr -CA ca/intermediate.pem -CAkey ca/intermediate-key.pem -CAcreateserial \
  -days 365 -extfile openssl.cnf -extensions client_ext -out clients/alice.pem 2>/dev/null

# An empty CRL per CA, as the file: URLs in certgate.yaml point at them.
for ca in root intermediate; do
  : > "crl/index-$ca.txt"
  [ -f "crl/crlnumber-$ca" ] || echo 1000 > "crl/crlnumber-$ca"
  sed "s/-CA/-$ca/g" openssl.cnf > "crl/$ca.cnf"
  openssl ca -gencrl -config "crl/$ca.cnf" -name ca_db -keyfile "ca/$ca-key.pem" -cert "ca/$ca.pem" \
    -out "crl/$ca.crl.pem" 2>/dev/null
  openssl crl -in "crl/$ca.crl.pem" -outform DER -out "crl/$ca.crl"
done
rm -f ca/*.csr tls/*.csr clients/*.csr tls/server-leaf.pem ca/*.srl
chmod 644 ca/*.pem tls/server.pem clients/alice.pem crl/*.crl
echo "PKI written to $dir"
