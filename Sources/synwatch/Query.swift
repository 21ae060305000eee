import ArgumentParser
import SynwatchClient
import SynwatchEngine
import SynwatchProtocol

/// `--socket` and `--json`: how every query subcommand reaches the daemon and prints its answer.
struct QueryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The daemon's query socket.", valueName: "path"))
    var socket = QuerySocketPath.standard

    @Flag(help: "Print the daemon's JSON as it is.")
    var json = false

    /// The body of `GET target`, printed as is with `--json`, otherwise decoded as `type`.
    /// - Returns: nil when `--json` printed it.
    /// - Throws: `CommandFailure` with the client's one-line error, the daemon's error body, or what is wrong with
    ///   the answer (a missing field is an error, never a zero).
    func fetch<Body: Decodable>(_ target: String, as type: Body.Type) async throws -> Body? {
        let response: QueryClient.Response
        do {
            response = try await QueryClient(path: socket).get(target)
        } catch {
            throw CommandFailure("\(error)")
        }
        let body = response.text
        guard response.status == 200 else {
            throw CommandFailure(QueryClient.failure(response.status, body: body).description)
        }
        if json {
            OutputStream.standardOutput.write(body.hasSuffix("\n") ? body : body + "\n")
            return nil
        }
        return try decode(type, from: body)
    }

    /// One body or event line from the daemon, decoded.
    /// - Throws: `CommandFailure` naming the field that is missing or wrong.
    func decode<Body: Decodable>(_ type: Body.Type, from text: String) throws -> Body {
        do {
            return try ContractJSON.decode(type, from: text)
        } catch {
            throw CommandFailure("bad response from synwatchd at \(socket): \(Self.reason(error))")
        }
    }

    /// A decoding error in one phrase: which field, and what is wrong with it.
    static func reason(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            let parent = path(context)
            return "no field \(parent.isEmpty ? "" : parent + ".")\(key.stringValue)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "field \(path(context)) is not what it should be"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "field \(path(context)) is not what it should be"
        default:
            return "\(error)"
        }
    }
}

extension CaptureTime {
    /// The time as UTC date and time to the millisecond.
    var text: String { AnalysisReport.format(timestamp) }
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
