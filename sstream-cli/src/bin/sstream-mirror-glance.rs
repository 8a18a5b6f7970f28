//! `sstream-mirror-glance`: not built yet (issue 5). It says so plainly and exits non-zero
//! rather than pretending to work.
use std::process::ExitCode;

const HELP: &str = "\
sstream-mirror-glance: keep OpenStack Glance in sync with a simplestreams image stream.

NOT IMPLEMENTED YET. When built (issue 5) it will: authenticate with Keystone v3 (OS_* variables
or clouds.yaml), upload the images of SOURCE that pass FILTERS (default ftype~(disk1.img|disk.img)
arch~(x86_64|amd64|i386)) with the reference tool's properties, keep the newest --max versions,
delete what fell out (only images it owns), and publish the result as an image-ids stream.
It will accept the reference tool's flags (--keep --max --region --mirror --path --output-dir
--name-prefix --cloud-name --content-id --keyring --hypervisor-mapping --custom-property ...).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
    } else {
        eprintln!("sstream-mirror-glance: not implemented yet; see --help");
    }
    ExitCode::FAILURE
}
