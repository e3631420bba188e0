//! Writes the fuzz seeds (real, valid inputs of every target) to `<dir>/<target>/<name>`;
//! `scripts/fuzz` runs it before fuzzing. Usage: `fuzz_seeds <dir>`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .ok_or_else(|| std::io::Error::other("usage: fuzz_seeds <dir>"))?;
    for seed in punchr_fuzz_entry::seeds() {
        let target = dir.join(seed.target);
        std::fs::create_dir_all(&target)?;
        std::fs::write(target.join(seed.name), &seed.data)?;
    }
    Ok(())
}
