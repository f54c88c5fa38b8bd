//! luo-user's session ABI against the 7.3 uapi header.

use std::process::Command;

use crate::build::{cache, selftests};
use crate::run::{self, Result};

/// Checks `luo_user::session::uapi::FACTS` against the 7.3 source's uapi header: a C program
/// compiled against the installed headers prints each fact, and every number must match.
pub fn check() -> Result {
    run::step("luo-user's session ABI against the 7.3 uapi header");
    let selftests = selftests::ensure()?;
    let include = selftests.join("headers/include");
    let facts = luo_user::session::uapi::FACTS;
    let mut program = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/liveupdate.h>\n\
         int main(void)\n{\n",
    );
    for (expr, _) in facts {
        program.push_str(&format!(
            "\tprintf(\"%llu\\n\", (unsigned long long)({expr}));\n"
        ));
    }
    program.push_str("\treturn 0;\n}\n");
    let dir = cache::scratch("session-uapi")?;
    let source = dir.join("facts.c");
    let binary = dir.join("facts");
    std::fs::write(&source, program)
        .map_err(|err| format!("cannot write {}: {err}", source.display()))?;
    run::run(
        Command::new("cc")
            .arg("-Wall")
            .arg("-Werror")
            .arg("-isystem")
            .arg(&include)
            .arg("-o")
            .arg(&binary)
            .arg(&source),
    )?;
    let printed = run::output(&mut Command::new(&binary))?;
    let values: Vec<&str> = printed.lines().collect();
    let mut wrong = Vec::new();
    for ((expr, ours), theirs) in facts.iter().zip(&values) {
        if theirs.parse::<u64>() != Ok(*ours) {
            wrong.push(format!(
                "{expr}: the header says {theirs}, luo-user says {ours}"
            ));
        }
    }
    if values.len() != facts.len() || !wrong.is_empty() {
        return Err(format!(
            "luo-user's session ABI differs from {}:\n{}",
            include.join("linux/liveupdate.h").display(),
            wrong.join("\n")
        ));
    }
    eprintln!("    {} numbers match the header", facts.len());
    Ok(())
}
