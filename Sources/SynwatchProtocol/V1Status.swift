import SynwatchKernel

extension V1 {
    /// The body of `GET /v1/status`: the daemon and its capture, the engine's traffic and totals, then what goes on
    /// now (attacks, the kernel's view, the hooks).
    public struct Status: Codable, Hashable, Sendable {
        public var daemon: Daemon
        public var traffic: Traffic
        public var totals: EngineTotals
        public var live: Live

        public init(daemon: Daemon, traffic: Traffic, totals: EngineTotals, live: Live) {
            self.daemon = daemon
            self.traffic = traffic
            self.totals = totals
            self.live = live
        }

        public init(from decoder: any Decoder) throws {
            daemon = try Daemon(from: decoder)
            traffic = try Traffic(from: decoder)
            totals = try EngineTotals(from: decoder)
            live = try Live(from: decoder)
        }

        public func encode(to encoder: any Encoder) throws {
            try V1.flatten([daemon, traffic, totals, live], into: encoder)
        }
    }

    public struct Daemon: Codable, Hashable, Sendable {
        public var version: String
        /// Wall-clock seconds since the epoch.
        public var startedAt: Seconds
        public var updatedAt: Seconds
        public var uptime: Seconds
        /// The configuration file's path.
        public var configuration: String
        /// Successful configuration reloads (SIGHUP).
        public var reloads: Int
        public var capture: Capture

        public init(
            version: String,
            startedAt: Seconds,
            updatedAt: Seconds,
            uptime: Seconds,
            configuration: String,
            reloads: Int,
            capture: Capture
        ) {
            self.version = version
            self.startedAt = startedAt
            self.updatedAt = updatedAt
            self.uptime = uptime
            self.configuration = configuration
            self.reloads = reloads
            self.capture = capture
        }

        enum CodingKeys: String, CodingKey {
            case version, startedAt = "started_at", updatedAt = "updated_at", uptime, configuration, reloads, capture
        }
    }

    public struct Capture: Codable, Hashable, Sendable {
        /// The interfaces captured on (`any` for all).
        public var interfaces: [String]
        /// `active`, or why not.
        public var state: String
        public var packets: Int
        public var packetsPerSecond: Rate
        /// Frames the kernel dropped because the capture fell behind, and frames the interfaces dropped.
        public var kernelDrops: Int
        public var interfaceDrops: Int
        /// Each interface's threads (its readers and its engine's), and how busy they keep their cores.
        public var threads: [CaptureThread]
        /// The services whose spoofed storm each interface's kernel filter thins now.
        public var kernelSampling: [KernelSampling]

        public init(
            interfaces: [String],
            state: String,
            packets: Int,
            packetsPerSecond: Rate,
            kernelDrops: Int,
            interfaceDrops: Int,
            threads: [CaptureThread] = [],
            kernelSampling: [KernelSampling] = []
        ) {
            self.interfaces = interfaces
            self.state = state
            self.packets = packets
            self.packetsPerSecond = packetsPerSecond
            self.kernelDrops = kernelDrops
            self.interfaceDrops = interfaceDrops
            self.threads = threads
            self.kernelSampling = kernelSampling
        }

        enum CodingKeys: String, CodingKey {
            case interfaces, state, packets, packetsPerSecond = "packets_per_s", kernelDrops = "kernel_drops"
            case interfaceDrops = "interface_drops", threads, kernelSampling = "kernel_sampling"
        }
    }

    /// A service (no `port`: a whole host) whose clients an interface's kernel filter samples: it passes the SYNs
    /// and SYN-ACKs of one client in `one_in`, and the engine scales the service's figures back up.
    public struct KernelSampling: Codable, Hashable, Sendable {
        public var interface: String
        public var victim: String
        public var port: UInt16?
        public var oneIn: Int

        public init(interface: String, victim: String, port: UInt16?, oneIn: Int) {
            self.interface = interface
            self.victim = victim
            self.port = port
            self.oneIn = oneIn
        }

        enum CodingKeys: String, CodingKey {
            case interface, victim, port, oneIn = "one_in"
        }
    }

    /// One of an interface's capture threads: `read` (`read 1` … `read N` with several readers) takes frames from
    /// libpcap and decodes them, `engine` tracks and detects. The busiest one bounds the packets the interface can
    /// take.
    public struct CaptureThread: Codable, Hashable, Sendable {
        public var interface: String
        public var thread: String
        /// CPU time used since the thread started.
        public var cpuSeconds: Seconds
        /// CPU time over the last status interval as a share of one core: near 1, the thread is the limit.
        public var busy: Ratio

        public init(interface: String, thread: String, cpuSeconds: Seconds, busy: Ratio) {
            self.interface = interface
            self.thread = thread
            self.cpuSeconds = cpuSeconds
            self.busy = busy
        }

        enum CodingKeys: String, CodingKey {
            case interface, thread, cpuSeconds = "cpu_seconds", busy
        }
    }

    public struct Live: Codable, Hashable, Sendable {
        public var activeAttacks: Int
        public var kernel: Kernel
        public var hooks: Hooks

        public init(activeAttacks: Int, kernel: Kernel, hooks: Hooks) {
            self.activeAttacks = activeAttacks
            self.kernel = kernel
            self.hooks = hooks
        }

        enum CodingKeys: String, CodingKey {
            case activeAttacks = "active_attacks", kernel, hooks
        }
    }

    public enum KernelCounterNames: FieldNames {
        public static let names = KernelTCPCounter.allCases.map(\.fieldName)
    }

    public enum SynproxyCounterNames: FieldNames {
        public static let names = KernelSynproxyCounter.allCases.map(\.kernelName)
    }

    /// The kernel's own view of TCP on the daemon's host: its counters (null where it does not count them), their
    /// rates over the last interval (null until two reads), and its listen queues (null without sock_diag).
    public struct Kernel: Codable, Hashable, Sendable {
        /// Whether anything was read: in a container without `/proc/net` files nothing is.
        public var available: Bool
        public var counters: NamedCounts<KernelCounterNames, Nullable<Int>>
        public var perSecond: NamedCounts<KernelCounterNames, Nullable<KernelRate>>
        public var listeners: Nullable<Int>
        /// Listeners whose accept queue is over their backlog; left out without sock_diag.
        public var listenersFull: [Listener]?
        public var synReceived: Nullable<Int>
        /// SYN_RECV of the listeners with the most; left out without sock_diag.
        public var synReceivedServices: [SynReceived]?
        /// The SYN proxy's counters (`/proc/net/stat/synproxy`); left out where the kernel has no SYNPROXY.
        public var synproxy: Synproxy?

        public init(
            available: Bool,
            counters: NamedCounts<KernelCounterNames, Nullable<Int>>,
            perSecond: NamedCounts<KernelCounterNames, Nullable<KernelRate>>,
            listeners: Nullable<Int>,
            listenersFull: [Listener]?,
            synReceived: Nullable<Int>,
            synReceivedServices: [SynReceived]?,
            synproxy: Synproxy? = nil
        ) {
            self.available = available
            self.counters = counters
            self.perSecond = perSecond
            self.listeners = listeners
            self.listenersFull = listenersFull
            self.synReceived = synReceived
            self.synReceivedServices = synReceivedServices
            self.synproxy = synproxy
        }

        enum CodingKeys: String, CodingKey {
            case available, counters, perSecond = "per_s", listeners, listenersFull = "listeners_full"
            case synReceived = "syn_recv", synReceivedServices = "syn_recv_services", synproxy
        }

        /// The kernel's SYN proxy: its counters summed over the CPUs (null where a column is missing), and their
        /// rates over the last interval (null until two reads).
        public struct Synproxy: Codable, Hashable, Sendable {
            public var counters: NamedCounts<SynproxyCounterNames, Nullable<Int>>
            public var perSecond: NamedCounts<SynproxyCounterNames, Nullable<KernelRate>>

            public init(
                counters: NamedCounts<SynproxyCounterNames, Nullable<Int>>,
                perSecond: NamedCounts<SynproxyCounterNames, Nullable<KernelRate>>
            ) {
                self.counters = counters
                self.perSecond = perSecond
            }

            enum CodingKeys: String, CodingKey {
                case counters, perSecond = "per_s"
            }
        }

        public struct Listener: Codable, Hashable, Sendable {
            public var victim: String
            public var port: UInt16
            public var acceptQueue: Int
            public var backlog: Int

            public init(victim: String, port: UInt16, acceptQueue: Int, backlog: Int) {
                self.victim = victim
                self.port = port
                self.acceptQueue = acceptQueue
                self.backlog = backlog
            }

            enum CodingKeys: String, CodingKey {
                case victim, port, acceptQueue = "accept_queue", backlog
            }
        }

        public struct SynReceived: Codable, Hashable, Sendable {
            public var victim: String
            public var port: UInt16
            public var synReceived: Int

            public init(victim: String, port: UInt16, synReceived: Int) {
                self.victim = victim
                self.port = port
                self.synReceived = synReceived
            }

            enum CodingKeys: String, CodingKey {
                case victim, port, synReceived = "syn_recv"
            }

            public var service: String { V1.serviceText(victim: victim, port: port) }
        }
    }

    /// What the response hook did so far.
    public struct Hooks: Codable, Hashable, Sendable {
        /// Runs begun: each spawned, or tried to.
        public var runs: Int
        /// Runs that exited with status 0.
        public var succeeded: Int
        /// Runs that did not succeed (a non-zero status, a signal, the time limit, a program that could not start).
        public var failures: Int
        /// Runs the time limit stopped, counted in `failures` too.
        public var timeouts: Int
        /// Events that ran no hook because too many runs were going on.
        public var dropped: Int
        /// Runs going on now.
        public var running: Int

        public init(runs: Int, succeeded: Int, failures: Int, timeouts: Int, dropped: Int, running: Int) {
            self.runs = runs
            self.succeeded = succeeded
            self.failures = failures
            self.timeouts = timeouts
            self.dropped = dropped
            self.running = running
        }
    }
}
