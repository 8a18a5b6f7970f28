//! `sstream-query`: print the items of a stream that pass the filters, exactly as the Python
//! reference's `sstream-query` prints them (same items, values, order and formats).

use std::borrow::Cow;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Parser};
use simplestreams_core::{FilterSet, FlatItem};
use simplestreams_mirror::query::Query;

use crate::common::{join_url, HttpArgs, LogArgs, SumsArgs, VerifyArgs};
use crate::pyfmt;
use crate::source::Stream;

/// Query a simplestreams stream: print the items that pass the filters.
#[derive(Debug, Parser)]
#[command(
    name = "sstream-query",
    version,
    group(ArgGroup::new("format").args(["output_format", "pretty", "json"])),
    after_help = "FILTERS are KEY=VALUE, KEY!=VALUE, KEY~REGEX or KEY!~REGEX on the flattened item fields, \
                  all of which must pass.\n\nExample:\n  sstream-query --max 1 \
                  https://cloud-images.ubuntu.com/releases/streams/v1/index.sjson release=xenial arch=amd64 ftype=disk1.img"
)]
pub struct QueryArgs {
    /// Keep at most MAX versions of each product (newest first, counted after filtering).
    #[arg(long = "max", value_name = "MAX")]
    pub max_items: Option<usize>,
    /// Path of the index or products file in the mirror (default: taken from MIRROR_URL, else
    /// streams/v1/index.sjson).
    #[arg(long)]
    pub path: Option<String>,
    /// Print each item with a Python %-template, e.g. '%(product_name)s %(item_url)s'.
    #[arg(short = 'o', long = "output-format", value_name = "FORMAT")]
    pub output_format: Option<String>,
    /// Pretty-print each item (Python pprint).
    #[arg(long)]
    pub pretty: bool,
    /// Print all items as one JSON list of objects with sorted keys.
    #[arg(long)]
    pub json: bool,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// Signature flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Network flags.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Checksum-file directory flags.
    #[command(flatten)]
    pub sums: SumsArgs,
    /// Mirror URL (http(s)://, file:// or a directory), or the URL of an index or products file.
    #[arg(value_name = "MIRROR_URL")]
    pub mirror_url: String,
    /// Item filters.
    #[arg(value_name = "FILTERS")]
    pub filters: Vec<String>,
}

enum Output {
    Repr,
    Pretty,
    Json,
    Template(String),
}

/// Runs `sstream-query`.
pub fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    args.log.init()?;
    let filters = FilterSet::parse(&args.filters)?;
    let output = if args.pretty {
        Output::Pretty
    } else if args.json {
        Output::Json
    } else if let Some(t) = args.output_format.clone() {
        Output::Template(t)
    } else {
        Output::Repr
    };
    let rt = crate::common::runtime()?;
    let scope = simplestreams_mirror::sums::SizeScope {
        filters: filters.clone(),
        max: args.max_items,
    };
    let stream = rt.block_on(Stream::open_with(
        &args.mirror_url,
        args.path.as_deref(),
        &[],
        &args.http,
        &args.sums,
        &args.verify,
        scope,
    ))?;
    let reader = stream.reader(&args.verify, &args.http)?;
    let query = Query::new(filters, args.max_items);
    let mut printer = Printer {
        root: stream.root.clone(),
        output,
        json_items: Vec::new(),
        out: io::stdout().lock(),
        failed: None,
    };
    rt.block_on(query.run(&reader, &stream.entry, |flat| {
        // Printing errors end the query; the library only sees that it must stop.
        match printer.emit(flat) {
            Ok(()) => Ok(()),
            Err(e) => {
                printer.failed = Some(e);
                Err(simplestreams_mirror::Error::Aborted("output failed".into()))
            }
        }
    }))
    .map_err(|e| match printer.failed.take() {
        Some(print_error) => print_error,
        None => e.into(),
    })?;
    printer.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the items in the format asked for.
struct Printer<W: Write> {
    root: String,
    output: Output,
    json_items: Vec<Vec<(String, String)>>,
    out: W,
    /// Why printing stopped, when it did.
    failed: Option<anyhow::Error>,
}

impl<W: Write> Printer<W> {
    /// Prints (or, for `--json`, keeps) one selected item.
    fn emit(&mut self, flat: FlatItem<'_>) -> anyhow::Result<()> {
        let mut pairs: Vec<(&str, Cow<'_, str>)> = flat.into_iter().collect();
        if let Some((_, path)) = pairs.iter().find(|(k, _)| *k == "path") {
            let url = join_url(&self.root, path);
            pairs.push(("item_url", Cow::Owned(url)));
        }
        match &self.output {
            Output::Repr => writeln!(self.out, "{}", pyfmt::repr_dict(&pairs))?,
            Output::Pretty => write!(self.out, "{}", pyfmt::pprint_dict(&pairs))?,
            Output::Json => self.json_items.push(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into_owned()))
                    .collect(),
            ),
            Output::Template(t) => match pyfmt::percent_format(t, &pairs) {
                Ok(line) => writeln!(self.out, "{line}")?,
                Err(pyfmt::TemplateError::MissingKey(key)) => {
                    // As the reference: say so on stderr and go on with the next item.
                    eprintln!("output format failed. Missing {key}");
                    eprintln!("item: {}", pyfmt::repr_dict(&pairs));
                }
                Err(pyfmt::TemplateError::Bad(why)) => {
                    anyhow::bail!("bad output format {t:?}: {why}")
                }
            },
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if let Output::Json = self.output {
            let items: Vec<Vec<(&str, Cow<'_, str>)>> = self
                .json_items
                .iter()
                .map(|item| {
                    item.iter()
                        .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())))
                        .collect()
                })
                .collect();
            writeln!(self.out, "{}", pyfmt::json_dumps(&items)).context("cannot write output")?;
        }
        self.out.flush()?;
        Ok(())
    }
}
