/// FNV-1a, 64 bits: a stable, cheap hash for short names (owner tags, derived interface names
/// and MACs). Not for anything an attacker chooses to collide.
public func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    return hash
}

/// `value` in lower-case hex, zero-padded to `digits`.
public func hexDigits(_ value: UInt64, _ digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}
