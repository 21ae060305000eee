import ArgumentParser

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Analyse pcap and pcapng files offline.")
}
