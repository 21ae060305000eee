/// What the host's kernel said about TCP over its last read interval, handed to the engine by the daemon (the
/// engine reads nothing itself). It corroborates alerts, and it is evidence while the capture is losing frames.
public struct KernelObservation: Sendable, Hashable {
    /// SYN cookies the kernel sent, per second (TcpExt SyncookiesSent).
    public var syncookiesSentPerSecond: Double?
    /// SYNs that found a listener's accept queue full, per second (TcpExt ListenOverflows).
    public var listenOverflowsPerSecond: Double?
    /// SYNs dropped by listeners for any reason, per second (TcpExt ListenDrops).
    public var listenDropsPerSecond: Double?
    /// SYNs answered with a cookie because the SYN queue was full, per second (TcpExt TCPReqQFullDoCookies).
    public var requestQueueFullCookiesPerSecond: Double?
    /// SYNs dropped because the SYN queue was full and cookies were off, per second (TcpExt TCPReqQFullDrop).
    public var requestQueueFullDropsPerSecond: Double?
    /// SYNs the kernel's SYN proxy answered with a cookie, per second (synproxy syn_received); nil without one.
    public var synproxySynPerSecond: Double?
    /// ACKs whose SYN proxy cookie checked out, per second (synproxy cookie_valid): clients let through.
    public var synproxyCookieValidPerSecond: Double?
    /// ACKs whose SYN proxy cookie did not check out, per second (synproxy cookie_invalid).
    public var synproxyCookieInvalidPerSecond: Double?
    /// Request sockets in SYN_RECV of the listening services with the most.
    public var synReceived: [ServiceSynReceived]
    /// The share of frames the capture lost since the previous reading (0 = none, 1 = all): its own drop counters.
    public var captureLoss: Double

    public init(
        syncookiesSentPerSecond: Double? = nil,
        listenOverflowsPerSecond: Double? = nil,
        listenDropsPerSecond: Double? = nil,
        requestQueueFullCookiesPerSecond: Double? = nil,
        requestQueueFullDropsPerSecond: Double? = nil,
        synproxySynPerSecond: Double? = nil,
        synproxyCookieValidPerSecond: Double? = nil,
        synproxyCookieInvalidPerSecond: Double? = nil,
        synReceived: [ServiceSynReceived] = [],
        captureLoss: Double = 0
    ) {
        self.syncookiesSentPerSecond = syncookiesSentPerSecond
        self.listenOverflowsPerSecond = listenOverflowsPerSecond
        self.listenDropsPerSecond = listenDropsPerSecond
        self.requestQueueFullCookiesPerSecond = requestQueueFullCookiesPerSecond
        self.requestQueueFullDropsPerSecond = requestQueueFullDropsPerSecond
        self.synproxySynPerSecond = synproxySynPerSecond
        self.synproxyCookieValidPerSecond = synproxyCookieValidPerSecond
        self.synproxyCookieInvalidPerSecond = synproxyCookieInvalidPerSecond
        self.synReceived = synReceived
        self.captureLoss = captureLoss
    }

    /// SYNs per second the kernel turned away because a listener's SYN queue was full: answered by a cookie, or
    /// dropped with cookies off. (A SYN dropped for a full accept queue is an application that does not accept.)
    public var synQueueOverflowsPerSecond: Double {
        max(syncookiesSentPerSecond ?? 0, requestQueueFullCookiesPerSecond ?? 0) + (requestQueueFullDropsPerSecond ?? 0)
    }

    /// SYNs per second the kernel could not queue: answered by a cookie (the listener's, or the SYN proxy's in
    /// front of it, whose SYNs the listener never sees), or dropped with the queue full.
    public var synPressurePerSecond: Double {
        let cookies = max(syncookiesSentPerSecond ?? 0, requestQueueFullCookiesPerSecond ?? 0)
        return cookies + (synproxySynPerSecond ?? 0) + (requestQueueFullDropsPerSecond ?? 0)
            + (listenOverflowsPerSecond ?? 0)
    }
}

/// SYN_RECV request sockets of one listening service.
public struct ServiceSynReceived: Sendable, Hashable {
    public var address: IPAddress
    public var port: UInt16
    public var count: Int
    /// The backlog of its listener, nil when unknown: its SYN queue is full at as many request sockets.
    public var backlog: Int?

    public init(address: IPAddress, port: UInt16, count: Int, backlog: Int? = nil) {
        self.address = address
        self.port = port
        self.count = count
        self.backlog = backlog
    }

    /// Whether the listener's SYN queue is full: the kernel answers its next SYNs with cookies, or drops them.
    public var isSynQueueFull: Bool { backlog.map { count >= $0 } ?? false }
}

/// The kernel's figures carried by an alert: the host-wide rates, and SYN_RECV of the victim when it listens here.
public struct KernelFigures: Sendable, Hashable {
    public var observation: KernelObservation
    /// Request sockets in SYN_RECV on the victim service, when it is a listener of this host.
    public var victimSynReceived: Int?
    /// Whether the kernel's figures made this evidence: the capture was losing frames, and the kernel under SYN
    /// pressure, so the half-open rate was corrected for the loss.
    public var corroborated: Bool

    public init(observation: KernelObservation, victimSynReceived: Int?, corroborated: Bool) {
        self.observation = observation
        self.victimSynReceived = victimSynReceived
        self.corroborated = corroborated
    }

    /// The larger of each figure (SYN_RECV of the victim's listener included), corroborated if either was.
    func merged(with other: KernelFigures) -> KernelFigures {
        var observation = other.observation
        let rates: [WritableKeyPath<KernelObservation, Double?>] = [
            \.syncookiesSentPerSecond, \.listenOverflowsPerSecond, \.listenDropsPerSecond,
            \.requestQueueFullCookiesPerSecond, \.requestQueueFullDropsPerSecond, \.synproxySynPerSecond,
            \.synproxyCookieValidPerSecond, \.synproxyCookieInvalidPerSecond,
        ]
        for rate in rates {
            let mine = self.observation[keyPath: rate]
            observation[keyPath: rate] =
                mine.map { max($0, observation[keyPath: rate] ?? $0) } ?? observation[keyPath: rate]
        }
        observation.captureLoss = max(self.observation.captureLoss, observation.captureLoss)
        let synReceived = [victimSynReceived, other.victimSynReceived].compactMap { $0 }.max()
        return KernelFigures(
            observation: observation,
            victimSynReceived: synReceived,
            corroborated: corroborated || other.corroborated
        )
    }
}

extension Engine {
    /// Takes the kernel's latest reading: later alerts carry it, and it is evidence while the capture loses frames.
    /// Each attack going on keeps the most the kernel showed during it, for its end.
    public func observe(_ observation: KernelObservation) {
        kernel = observation
        let inputs = detectorInputs
        withDetector { detector, _ in detector.recordKernelPeaks(inputs) }
    }
}

extension DetectorInputs {
    /// Captures losing less than this share of frames count as complete.
    static let negligibleCaptureLoss = 0.01
    /// The most loss a half-open rate is corrected for: beyond it the capture says too little to scale up.
    static let maximumCorrectedLoss = 0.9

    /// Whether the kernel corroborates a flood the capture under-counts: the capture is losing frames, and the
    /// kernel sees at least the absolute threshold in SYNs it could not queue.
    var kernelCorroborates: Bool {
        guard let kernel else { return false }
        return kernel.captureLoss >= Self.negligibleCaptureLoss
            && kernel.synPressurePerSecond >= configuration.detection.halfOpenPerSecond
    }

    /// Whether the kernel's latest reading finds the SYN queue of `key`'s listener full while the host turns away
    /// `rate` SYNs a second or more for full SYN queues, and overflows no accept queue at that rate: the service
    /// loses handshakes to its half-open ones, whatever their rate. An application that does not keep up fills its
    /// SYN queue too, with clients whose completing ACK found the accept queue full (the kernel counts their SYNs as
    /// cookies before it drops them). Live only: a capture file has no kernel.
    func kernelFindsSynQueueFull(_ key: VictimKey, turningAway rate: Double) -> Bool {
        guard let kernel, kernel.synQueueOverflowsPerSecond >= rate, kernel.listenOverflowsPerSecond ?? 0 < rate
        else { return false }
        return kernel.synReceived.contains { $0.address == key.address && $0.port == key.port && $0.isSynQueueFull }
    }

    /// The half-open rate the detector weighs: the measured one, corrected for the frames the capture lost while
    /// the kernel corroborates a flood.
    func evidentHalfOpen(_ measured: Double) -> Double {
        guard kernelCorroborates, let kernel else { return measured }
        return measured / (1 - min(kernel.captureLoss, Self.maximumCorrectedLoss))
    }

    /// The kernel's figures for an alert on `key`, with whether they were needed as evidence.
    func kernelFigures(for key: VictimKey, halfOpenPerSecond: Double) -> KernelFigures? {
        guard let kernel else { return nil }
        let listener = kernel.synReceived.first { $0.address == key.address && $0.port == key.port }
        return KernelFigures(
            observation: kernel,
            victimSynReceived: listener?.count,
            corroborated: kernelCorroborates && halfOpenPerSecond < configuration.detection.halfOpenPerSecond
        )
    }
}
