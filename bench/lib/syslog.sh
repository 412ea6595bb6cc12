# Sourced by the benchmarks (bench/radius/run.sh, bench/pam/run.sh); needs WORK (a
# scratch directory) and PIDS (an array of processes the caller kills at exit).
OWN_DEVLOG= ; OLD_DEVLOG=

# syslog_sink: the TOTP peer logs every login through syslog(3). Without a daemon on
# /dev/log, glibc falls back to writing each line to the console (about 1.3 ms a line), which
# is not how anyone runs a RADIUS server: issue 25 measured that handicap as 50x against a
# fair 11x. So a syslog daemon runs as an administrator's would: the machine's own if one
# listens on /dev/log, else a private rsyslogd (Debian's defaults: imuxsock, omfile, no
# per-line sync) writing to $WORK/syslog for the length of the run. The caller's cleanup calls syslog_sink_stop.
syslog_sink() {
    if [ -S /dev/log ] && logger --socket-errors=on -u /dev/log "mfa bench: syslog check" 2>/dev/null; then
        echo "syslog: the machine's daemon on /dev/log"
        return
    fi
    command -v rsyslogd >/dev/null || { echo "apt-get install rsyslog (the TOTP peer's syslog)" >&2; exit 1; }
    OLD_DEVLOG=$(readlink /dev/log || true) # a dangling link (journald's, with no systemd here)
    OWN_DEVLOG=1
    rm -f /dev/log
    cat > "$WORK/rsyslog.conf" <<EOT
global(workDirectory="$WORK")
module(load="imuxsock" SysSock.Name="/dev/log")
*.* action(type="omfile" file="$WORK/syslog")
EOT
    rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslogd.pid" >"$WORK/rsyslogd.out" 2>&1 &
    PIDS+=($!)
    local n=0
    until [ -S /dev/log ] && logger --socket-errors=on -u /dev/log "mfa bench: syslog check" 2>/dev/null; do
        n=$((n + 1)); [ "$n" -lt 100 ] || { cat "$WORK/rsyslogd.out" >&2; exit 1; }
        sleep 0.05
    done
    echo "syslog: a private rsyslogd $(rsyslogd -v | head -1 | awk '{print $2}') on /dev/log, to $WORK/syslog"
}


# Puts /dev/log back as it was (after the caller killed the rsyslogd in PIDS).
syslog_sink_stop() {
    if [ -n "$OWN_DEVLOG" ]; then
        rm -f /dev/log
        if [ -n "$OLD_DEVLOG" ]; then ln -s "$OLD_DEVLOG" /dev/log; fi
    fi
}
