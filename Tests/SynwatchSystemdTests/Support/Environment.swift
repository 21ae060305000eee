import Glibc

/// Runs `body` with `variables` set in the process environment (nil unsets one), then restores what was there.
///
/// The environment is process-wide and not thread-safe: only XCTest tests use this, and XCTest runs one test at a
/// time in a process.
func withEnvironment<T>(_ variables: [String: String?], _ body: () throws -> T) rethrows -> T {
    let saved = variables.keys.map { name in (name, getenv(name).map { String(cString: $0) }) }
    defer {
        for (name, value) in saved { set(name, value) }
    }
    for (name, value) in variables { set(name, value) }
    return try body()
}

private func set(_ name: String, _ value: String?) {
    if let value { setenv(name, value, 1) } else { unsetenv(name) }
}
