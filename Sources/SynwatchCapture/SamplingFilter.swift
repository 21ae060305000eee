import SynwatchEngine

extension LiveCaptureOptions {
    /// The engine's filter, which also drops the handshake openings of clients that `sampling` does not keep
    /// for `services`: a client's SYN to a service and the service's SYN-ACK to it. Everything else passes,
    /// so the engine still sees every ACK, RST, FIN and data segment; it applies the same test itself, so the
    /// filter only saves work.
    ///
    /// Each `tcp` of `engineFilter(for:)` becomes `(tcp and not (S))`, S the OR of two tests per service with a
    /// shift above 0, so on Ethernet S is repeated at each depth of `vlan` nesting. A client's address mixed as in
    /// `ClientSampling.mixed` (classic BPF multiplies modulo 2³² too), shifted right by 32 − shift, is not 0 for an
    /// unkept client. A shift is taken as given, up to 32, even above `ClientSampling.maximumShift`: the filter must
    /// drop no client the engine keeps.
    ///
    /// IPv6 tests read the header at fixed offsets (`ip6[…]`, next header TCP only) because libpcap 1.10
    /// compiles `tcp[…]` under `ip6` to a filter that rejects every packet; a TCP segment behind extension
    /// headers is not thinned, only passed.
    public static func engineFilter(
        for linkType: LinkType,
        thinning services: [SampledService],
        sampling: ClientSampling
    ) -> String {
        let unkept = services.filter { $0.shift > 0 }.map { unkeptHandshakeOpenings($0, sampling: sampling) }
        let tcp = unkept.isEmpty ? "tcp" : "(tcp and not (\(unkept.joined(separator: " or "))))"
        return engineFilter(for: linkType, tcp: tcp)
    }

    /// The client's SYN to `service` and the service's SYN-ACK back, for a client that is not kept.
    private static func unkeptHandshakeOpenings(_ service: SampledService, sampling: ClientSampling) -> String {
        let shift = 32 - Int(min(service.shift, 32))
        let multiplier = sampling.multiplier
        let host = service.address.description
        let synOnly = "(tcp-syn|tcp-ack) = tcp-syn"
        let synAck = "(tcp-syn|tcp-ack) = (tcp-syn|tcp-ack)"
        // A client's address from `offset` of the IP header, mixed as `ClientSampling.mixed` does it.
        func unkept(ipv4 offset: Int) -> String { "((ip[\(offset):4] * \(multiplier)) >> \(shift)) != 0" }
        func unkept(ipv6 offset: Int) -> String {
            let mixed = (1...3).reduce("(ip6[\(offset):4] * \(multiplier))") { value, word in
                "((\(value) ^ ip6[\(offset + 4 * word):4]) * \(multiplier))"
            }
            return "(\(mixed) >> \(shift)) != 0"
        }

        if service.address.isIPv4 {
            let toPort = service.port == 0 ? "" : " and tcp dst port \(service.port)"
            let fromPort = service.port == 0 ? "" : " and tcp src port \(service.port)"
            return "(ip dst host \(host)\(toPort) and tcp[tcpflags] & \(synOnly) and \(unkept(ipv4: 12)))"
                + " or (ip src host \(host)\(fromPort) and tcp[tcpflags] & \(synAck) and \(unkept(ipv4: 16)))"
        }
        // Next header TCP at byte 6, ports at 40 and 42, flags at 53; the source address at 8, the destination at 24.
        let toPort = service.port == 0 ? "" : " and ip6[42:2] = \(service.port)"
        let fromPort = service.port == 0 ? "" : " and ip6[40:2] = \(service.port)"
        return "(ip6[6] = 6 and ip6 dst host \(host)\(toPort) and ip6[53] & \(synOnly) and \(unkept(ipv6: 8)))"
            + " or (ip6[6] = 6 and ip6 src host \(host)\(fromPort) and ip6[53] & \(synAck) and \(unkept(ipv6: 24)))"
    }
}
