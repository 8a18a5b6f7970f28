//! `sstream-query`: print the items of a stream that pass the filters, exactly as the Python
//! reference's `sstream-query` prints them (same items, values, order and formats).

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Parser};
use simplestreams_core::{select, Document, FilterSet, FlatItem, ProductsView};

use crate::pyfmt;
use crate::source::{split_mirror_url, MetadataReader, SignaturePolicy, DEFAULT_KEYRING};

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
    /// More output on stderr (-v: which files were read and verified; -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Write log messages to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// OpenPGP keyring (binary or armored) to verify signed metadata with. Repeatable.
    #[arg(long, value_name = "KEYRING")]
    pub keyring: Vec<PathBuf>,
    /// Do not check signatures of signed metadata.
    #[arg(short = 'U', long = "no-verify")]
    pub no_verify: bool,
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
    crate::common::init_logging(args.verbose, args.log_file.as_deref())?;
    let filters = FilterSet::parse(&args.filters)?;
    let (mirror, path) = split_mirror_url(&args.mirror_url, args.path.as_deref());
    let output = if args.pretty {
        Output::Pretty
    } else if args.json {
        Output::Json
    } else if let Some(t) = args.output_format.clone() {
        Output::Template(t)
    } else {
        Output::Repr
    };
    let keyrings = if args.keyring.is_empty() {
        vec![PathBuf::from(DEFAULT_KEYRING)]
    } else {
        args.keyring.clone()
    };
    let policy = SignaturePolicy::for_entry_path(
        &path,
        !args.no_verify,
        &keyrings,
        !args.keyring.is_empty(),
    )?;
    let rt = crate::common::runtime()?;
    let reader = MetadataReader::new(&mirror, policy)?;
    rt.block_on(async {
        let mut query = Query {
            reader,
            filters,
            max: args.max_items,
            output,
            json_items: Vec::new(),
            out: io::stdout().lock(),
        };
        query.walk(&path).await?;
        query.finish()
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The query's fast reading of a products file: large files on two threads when there is a
/// second core (the same result, sooner).
fn parse_view(bytes: &[u8]) -> Option<ProductsView<'_>> {
    if crate::source::worth_two_threads(bytes.len()) {
        ProductsView::parse_on_two_threads(bytes)
    } else {
        ProductsView::parse(bytes)
    }
}

struct Query<W: Write> {
    reader: MetadataReader,
    filters: FilterSet,
    max: Option<usize>,
    output: Output,
    json_items: Vec<Vec<(String, String)>>,
    out: W,
}

impl<W: Write> Query<W> {
    /// Reads one index or products file and everything it leads to, printing as it goes (the
    /// reference prints per products file, in index order).
    async fn walk(&mut self, path: &str) -> anyhow::Result<()> {
        let mut pending = vec![path.to_string()];
        // Depth-first in file order: children are pushed in reverse.
        while let Some(path) = pending.pop() {
            let (bytes, name) = self.reader.read(&path).await?;
            // Most products files take the zero-copy path; the rest (an index, `_aliases`,
            // anything unusual) the full model, which also words any error precisely.
            if let Some(view) = parse_view(&bytes) {
                let mut result = Ok(());
                let (filters, max) = (self.filters.clone(), self.max);
                view.select(&filters, max, |_, _, _, flat| {
                    if result.is_ok() {
                        result = self.emit(flat);
                    }
                });
                result?;
                // Freeing a large view piece by piece costs more than printing it; the process
                // exits after the query, so its memory is left to the OS.
                std::mem::forget(view);
                continue;
            }
            match Document::from_slice(&bytes, &name)? {
                Document::Index(index) => {
                    let children: Vec<String> = index
                        .index
                        .values()
                        .filter(|e| e.is_followed())
                        .filter_map(|e| e.path().map(str::to_string))
                        .collect();
                    pending.extend(children.into_iter().rev());
                }
                Document::Products(mut products) => {
                    products.expand_aliases(&name)?;
                    for sel in select(&products, &self.filters, self.max) {
                        self.emit(sel.flat)?;
                    }
                }
                Document::Mirrors(_) => {
                    anyhow::bail!("{name}: a mirrors:1.0 file has no items to query")
                }
            }
        }
        Ok(())
    }

    /// Prints (or, for `--json`, keeps) one selected item.
    fn emit(&mut self, flat: FlatItem<'_>) -> anyhow::Result<()> {
        {
            let mut pairs: Vec<(&str, Cow<'_, str>)> = flat.into_iter().collect();
            if let Some((_, path)) = pairs.iter().find(|(k, _)| *k == "path") {
                let url = self.reader.item_url(path);
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
