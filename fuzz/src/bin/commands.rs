fn main() {
    afl::fuzz!(|data: &[u8]| shadowdraft_fuzz::targets::commands(data));
}
