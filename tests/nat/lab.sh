#!/usr/bin/env bash
# A NAT lab made of network namespaces, joined to nothing outside this machine.
#
#   stoa-pub    203.0.113.10 and 203.0.113.11 (two addresses, for RFC 5780) on its loopback,
#               routes to both WAN links, default route into stoa-sink (a silent black hole)
#   stoa-cone   NAT, iptables MASQUERADE: endpoint-independent mapping       (WAN 100.64.1.2)
#   stoa-sym    NAT, MASQUERADE --random-fully: a new port per destination  (WAN 100.64.2.2)
#   stoa-fw     NAT like stoa-cone that also drops all forwarded UDP        (WAN 100.64.3.2)
#   stoa-a / stoa-b / stoa-c   hosts 192.168.{1,2,3}.2 behind cone / sym / fw
#   stoa-sink   100.64.9.2: forwards nothing; hosts the TURN tests' echo peer
#
# Usage: lab.sh up | down
set -euo pipefail
PREFIX=${LAB_PREFIX:-stoa}
x() { ip netns exec "$@"; }

up() {
  local n
  for n in pub sink cone sym fw a b c; do
    ip netns add "$PREFIX-$n"
    # IPv4 only: IPv6 link-local addresses finishing duplicate address detection while a
    # browser loads a page make Chromium abort it with ERR_NETWORK_CHANGED.
    x "$PREFIX-$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    x "$PREFIX-$n" ip link set lo up
  done
  x "$PREFIX-pub" ip addr add 203.0.113.10/32 dev lo
  x "$PREFIX-pub" ip addr add 203.0.113.11/32 dev lo
  local i=1
  for nat in cone sym fw; do
    local host=$(echo "a b c" | cut -d' ' -f$i)
    ip link add "w$i" netns "$PREFIX-pub" type veth peer name wan netns "$PREFIX-$nat"
    ip link add lan netns "$PREFIX-$nat" type veth peer name eth0 netns "$PREFIX-$host"
    x "$PREFIX-pub" ip addr add "100.64.$i.1/24" dev "w$i"
    x "$PREFIX-$nat" ip addr add "100.64.$i.2/24" dev wan
    x "$PREFIX-$nat" ip addr add "192.168.$i.1/24" dev lan
    x "$PREFIX-$host" ip addr add "192.168.$i.2/24" dev eth0
    x "$PREFIX-pub" ip link set "w$i" up
    x "$PREFIX-$nat" ip link set wan up
    x "$PREFIX-$nat" ip link set lan up
    x "$PREFIX-$host" ip link set eth0 up
    x "$PREFIX-$nat" ip route add default via "100.64.$i.1"
    x "$PREFIX-$host" ip route add default via "192.168.$i.1"
    x "$PREFIX-$nat" sysctl -qw net.ipv4.ip_forward=1
    i=$((i + 1))
  done
  x "$PREFIX-cone" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  x "$PREFIX-sym" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
  x "$PREFIX-fw" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  x "$PREFIX-fw" iptables -A FORWARD -p udp -j DROP
  # Like a host on the internet, the public side has a default route; it leads to a namespace
  # that forwards nothing, so traffic to the private ranges vanishes instead of failing with
  # "network unreachable".
  ip link add sink netns "$PREFIX-pub" type veth peer name up0 netns "$PREFIX-sink"
  x "$PREFIX-pub" ip addr add 100.64.9.1/24 dev sink
  x "$PREFIX-sink" ip addr add 100.64.9.2/24 dev up0
  x "$PREFIX-pub" ip link set sink up
  x "$PREFIX-sink" ip link set up0 up
  x "$PREFIX-pub" ip route add default via 100.64.9.2
  # The sink hosts the tests' TURN echo peer (100.64.9.2), which must answer the relay.
  x "$PREFIX-sink" ip route add 203.0.113.0/24 via 100.64.9.1
}

down() {
  local n
  for n in pub sink cone sym fw a b c; do
    ip netns del "$PREFIX-$n" 2>/dev/null || true
  done
}

case "${1:-}" in
  up) down; up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
