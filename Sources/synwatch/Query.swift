import ArgumentParser
import Foundation
import SynwatchClient
import SynwatchEngine
import SynwatchProtocol

/// `--socket` and `--json`: how every query subcommand reaches the daemon and prints its answer.
struct QueryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The daemon's query socket.", valueName: "path"))
    var socket = QuerySocketPath.standard

    @Flag(help: "Print the daemon's JSON as it is.")
    var json = false

    /// The body of `GET target`, printed as is with `--json`, otherwise parsed as a JSON object.
    /// - Returns: nil when `--json` printed it.
    /// - Throws: `CommandFailure` with the client's one-line error.
    func fetch(_ target: String) async throws -> JSONObject? {
        let response: QueryClient.Response
        do {
            response = try await QueryClient(path: socket).get(target)
        } catch {
            throw CommandFailure("\(error)")
        }
        let body = response.text
        guard response.status == 200 else {
            let error = QueryClient.failure(response.status, body: body)
            throw CommandFailure(error.description)
        }
        if json {
            OutputStream.standardOutput.write(body.hasSuffix("\n") ? body : body + "\n")
            return nil
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw CommandFailure("bad response from synwatchd at \(socket): not a JSON object")
        }
        return JSONObject(object)
    }
}

/// Typed reads of a JSON object from the daemon; missing fields read as zero or empty.
struct JSONObject {
    let fields: [String: Any]

    init(_ fields: [String: Any]) { self.fields = fields }

    func int(_ key: String) -> Int { (fields[key] as? NSNumber)?.intValue ?? 0 }
    func double(_ key: String) -> Double { (fields[key] as? NSNumber)?.doubleValue ?? 0 }
    func string(_ key: String) -> String { fields[key] as? String ?? "" }
    func object(_ key: String) -> JSONObject { JSONObject(fields[key] as? [String: Any] ?? [:]) }
    func array(_ key: String) -> [JSONObject] { (fields[key] as? [[String: Any]] ?? []).map(JSONObject.init) }

    /// `victim` and `port` as `address:port`, or `address (all ports)`.
    var service: String {
        AnalysisReport.service(IPAddress(string("victim")), (fields["port"] as? NSNumber).map { UInt16($0.intValue) })
    }

    /// A time field (seconds since the epoch) as UTC date and time.
    func time(_ key: String) -> String {
        AnalysisReport.format(Timestamp(nanoseconds: Int64((double(key) * 1e9).rounded())))
    }
}

/// Rows of cells under a header, the first column left-aligned and the others right-aligned.
func columns(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        var line = "  " + row[0] + String(repeating: " ", count: widths[0] - row[0].count)
        for column in row.indices.dropFirst() {
            line += String(repeating: " ", count: widths[column] - row[column].count + 2) + row[column]
        }
        // An empty last cell leaves no trailing spaces.
        return String(line.reversed().drop { $0 == " " }.reversed()) + "\n"
    }.joined()
}
