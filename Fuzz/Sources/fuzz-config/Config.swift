import SynwatchConfig

/// The configuration loader on one YAML text: a configuration or a `ConfigurationError` must come out, and the
/// error must describe itself. Bytes that are not UTF-8 are repaired as Swift repairs them, so every input is
/// text for libyaml.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        _ = try SynwatchConfiguration(yaml: text, path: "fuzz.yaml")
    } catch {
        _ = error.description
    }
    return 0
}
