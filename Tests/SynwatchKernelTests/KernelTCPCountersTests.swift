import SynwatchKernel
import Testing

@Suite struct KernelTCPCountersParserTests {
    @Test func readsTheFilesOfAFloodedNamespace() {
        let counters = KernelTCPCounters(netstat: RealProcFiles.floodedNetstat, snmp: RealProcFiles.floodedSnmp)
        #expect(counters.netstatPresent && counters.snmpPresent)
        #expect(counters[.syncookiesSent] == 2000)
        #expect(counters[.syncookiesRecv] == 5)
        #expect(counters[.syncookiesFailed] == 0)
        #expect(counters[.listenOverflows] == 500)
        #expect(counters[.listenDrops] == 500)
        #expect(counters[.reqQFullDoCookies] == 2500)
        #expect(counters[.reqQFullDrop] == 0)
        #expect(counters[.activeOpens] == 0)
        #expect(counters[.passiveOpens] == 5)
        #expect(counters[.attemptFails] == 0)
        #expect(counters[.estabResets] == 0)
    }

    @Test func readsTheFilesOfTheHostAtRest() {
        let counters = KernelTCPCounters(netstat: RealProcFiles.hostNetstat, snmp: RealProcFiles.hostSnmp)
        // `Tcp:` is told apart from `TcpExt:`, and MaxConn's -1 in the same table does not disturb its neighbours.
        #expect(counters[.activeOpens] == 23)
        #expect(counters[.passiveOpens] == 4)
        #expect(counters[.attemptFails] == 1)
        #expect(counters[.estabResets] == 0)
        #expect(counters[.syncookiesSent] == 0)
        #expect(KernelTCPCounter.allCases.allSatisfy { counters[$0] != nil })
    }

    @Test func findsColumnsByNameWhateverTheirOrderAndNeighbours() {
        let netstat = """
            IpExt: InNoRoutes SyncookiesSent
            IpExt: 7 8
            TcpExt: FutureCounter ListenDrops SyncookiesSent Unknown ListenOverflows
            TcpExt: 1 22 33 4 55
            MPTcpExt: SyncookiesSent
            MPTcpExt: 9
            """
        let counters = KernelTCPCounters(netstat: netstat, snmp: "Tcp: EstabResets ActiveOpens\nTcp: 6 3\n")
        #expect(counters[.syncookiesSent] == 33)
        #expect(counters[.listenDrops] == 22)
        #expect(counters[.listenOverflows] == 55)
        #expect(counters[.estabResets] == 6)
        #expect(counters[.activeOpens] == 3)
        // Columns this kernel would not have stay unknown.
        #expect(counters[.reqQFullDoCookies] == nil)
        #expect(counters[.passiveOpens] == nil)
    }

    @Test func takesOnlyTheTableOfEachFile() {
        // The snmp counters are not looked for in netstat, nor the reverse.
        let counters = KernelTCPCounters(
            netstat: "Tcp: ActiveOpens\nTcp: 5\n",
            snmp: "TcpExt: SyncookiesSent\nTcpExt: 5\n"
        )
        #expect(counters[.activeOpens] == nil)
        #expect(counters[.syncookiesSent] == nil)
        #expect(!counters.isAvailable)
        #expect(counters.netstatPresent && counters.snmpPresent)
    }

    @Test func leavesMalformedValuesUnknown() {
        let netstat = """
            TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops TCPReqQFullDrop
            TcpExt: -1 abc 18446744073709551616 18446744073709551615 0x10 12
            """
        let counters = KernelTCPCounters(netstat: netstat, snmp: nil)
        #expect(counters[.syncookiesSent] == nil)
        #expect(counters[.syncookiesRecv] == nil)
        #expect(counters[.syncookiesFailed] == nil)
        #expect(counters[.listenOverflows] == UInt64.max)
        #expect(counters[.listenDrops] == nil)
        #expect(counters[.reqQFullDrop] == 12)
    }

    @Test func givesNoValuesForAnIncompleteOrInconsistentTable() {
        let missingValues = KernelTCPCounters(netstat: "TcpExt: SyncookiesSent ListenDrops\n", snmp: "")
        #expect(!missingValues.isAvailable)
        #expect(missingValues.netstatPresent && missingValues.snmpPresent)

        let shortValues = KernelTCPCounters(netstat: "TcpExt: SyncookiesSent ListenDrops\nTcpExt: 4\n", snmp: nil)
        #expect(shortValues[.syncookiesSent] == nil)
        #expect(shortValues[.listenDrops] == nil)

        let longValues = KernelTCPCounters(netstat: "TcpExt: SyncookiesSent\nTcpExt: 4 5\n", snmp: nil)
        #expect(longValues[.syncookiesSent] == nil)

        let noColon = KernelTCPCounters(netstat: "TcpExt SyncookiesSent\nTcpExt 4\n", snmp: nil)
        #expect(noColon[.syncookiesSent] == nil)
    }

    @Test func toleratesBlankLinesAndExtraSpaces() {
        let counters = KernelTCPCounters(
            netstat: "\n\nTcpExt:  SyncookiesSent   ListenDrops \n\nTcpExt: 4  9\n",
            snmp: nil
        )
        #expect(counters[.syncookiesSent] == 4)
        #expect(counters[.listenDrops] == 9)
    }

    @Test func missingFilesMeanNothingIsKnown() {
        let counters = KernelTCPCounters(netstat: nil, snmp: RealProcFiles.hostSnmp)
        #expect(!counters.netstatPresent)
        #expect(counters.snmpPresent)
        #expect(counters[.syncookiesSent] == nil)
        #expect(counters[.activeOpens] == 23)
        #expect(KernelTCPCounters(netstat: nil, snmp: nil) == KernelTCPCounters())
    }

    @Test func namesEveryCounterOnce() {
        let cases = KernelTCPCounter.allCases
        #expect(Set(cases.map(\.kernelName)).count == cases.count)
        #expect(Set(cases.map(\.fieldName)).count == cases.count)
        #expect(
            cases.filter { $0.file == .snmp }.map(\.kernelName)
                == ["ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets"]
        )
        #expect(KernelTCPCounter.reqQFullDoCookies.description == "TcpExt TCPReqQFullDoCookies")
        #expect(KernelTCPCounter.estabResets.description == "Tcp EstabResets")
    }

    @Test func countersCanBeSetForFixtures() {
        var counters = KernelTCPCounters()
        counters[.listenOverflows] = 3
        #expect(counters[.listenOverflows] == 3)
        #expect(counters.isAvailable)
    }
}
