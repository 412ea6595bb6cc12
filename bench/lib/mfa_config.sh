# Sourced by bench/radius/run.sh and bench/radius/replication.sh; needs SECRET.

# mfa_config FILE PORT STORE-LINES [RADIUS-LINES]: a code-only daemon on 127.0.0.1:PORT.
mfa_config() {
    cat > "$1" <<EOT
[store]
$3
[policy]
trusted_networks = ["10.0.0.0/8"]
[audit]
syslog = false
[radius]
listen = ["127.0.0.1:$2"]
accounting_listen = []   # not measured; the default (the next port) is FreeRADIUS's here
${4:-}
mode = "code-only"
first_factor = "none"
[[radius.clients]]
name = "bench"
address = "127.0.0.1/32"
secret = "$SECRET"
EOT
    chmod 600 "$1" # an inline secret: the programs refuse a config others can read
}
