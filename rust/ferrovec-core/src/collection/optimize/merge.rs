//! Merging segments into one: plan (what to copy, which graph to keep), build (gather the
//! rows, extend or build the graphs, write the files, with no lock held), switch (carry over
//! the deletions made meanwhile, publish the manifest, swap the segment in).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::seal::write_payload_indexes;
use super::{Stop, SELF_CHECK_SAMPLES, VACUUM_FRACTION};
use crate::collection::manifest::{GraphMeta, SegmentMeta};
use crate::collection::state::{Source, SourceKind};
use crate::collection::{Collection, SEGMENTS_DIR};
use crate::config::CodeKind;
use crate::error::{Error, Result};
use crate::index::hnsw::{self, BuildSpace, CodeSpace, Graph};
use crate::index::quant::{self, Coder};
use crate::observe::metrics::RunKind;
use crate::point::{PointId, SparseRef};
use crate::segment::{self, Bitmap, GraphData, Segment, SegmentData, Shape};

/// Merge the sealed segments at `inputs` (source indices) into one new segment, indexed if it
/// is at least `full_scan_threshold` rows, then remove the inputs' files once no process uses
/// them (not before this process has let go of them too). The caller holds `structure`.
pub(super) fn merge(col: &Collection, inputs: &[usize], stop: &Stop<'_>) -> Result<()> {
    merge_as(col, inputs, stop, false)
}

/// `merge`; with `fresh`, every graph is built anew from the rows (no input's graph is kept
/// and extended), and so is every payload index.
pub(super) fn merge_as(
    col: &Collection,
    inputs: &[usize],
    stop: &Stop<'_>,
    fresh: bool,
) -> Result<()> {
    let started = std::time::Instant::now();
    let plan = plan(col, inputs, fresh)?;
    let points: usize = plan
        .inputs
        .iter()
        .map(|(seg, deleted)| seg.rows - deleted.count_ones())
        .sum();
    // Counted here unless a full optimization counts all its merges.
    let _running = col
        .optimizer
        .progress
        .begin((points * col.config.vectors.len()) as u64);
    let built = build(col, &plan, stop)?;
    switch(col, inputs, &plan, built)?;
    // The inputs' maps go before their files: a file is removed only once no map of it is left
    // in this process (other processes keep theirs until they move on).
    drop(plan);
    col.collect_garbage()?;
    col.metrics
        .record_run(RunKind::Merge, started.elapsed(), points);
    Ok(())
}

/// What a merge starts from: its inputs as they were, and the graphs it keeps.
struct Plan {
    /// Each input segment and its deletions when the merge began; later deletions are carried
    /// over at the switch.
    inputs: Vec<(Arc<Segment>, Bitmap)>,
    /// The input whose graphs are extended (the largest clean one with graphs), if any.
    base: Option<usize>,
    /// Its graph of each vector (all of them, or none).
    base_graphs: Option<Vec<Arc<Graph>>>,
}

fn plan(col: &Collection, inputs: &[usize], fresh: bool) -> Result<Plan> {
    let snap: Vec<(Arc<Segment>, Bitmap)> = {
        let st = col.state.read();
        inputs
            .iter()
            .filter_map(|&i| {
                st.sources[i]
                    .segment()
                    .map(|s| (s.clone(), st.sources[i].deleted.clone()))
            })
            .collect()
    };
    if snap.len() != inputs.len() {
        return Err(Error::internal("merge inputs must be sealed segments"));
    }
    let base = snap
        .iter()
        .enumerate()
        .filter(|(_, (s, d))| {
            !fresh && s.has_graph() && (d.count_ones() as f64) <= VACUUM_FRACTION * s.rows as f64
        })
        .max_by_key(|(_, (s, _))| s.rows)
        .map(|(i, _)| i);
    let base_graphs = match base {
        Some(b) => col
            .config
            .spaces()
            .iter()
            .map(|sp| snap[b].0.graph(sp.index))
            .collect::<Result<Option<Vec<_>>>>()?,
        None => None,
    };
    Ok(Plan {
        inputs: snap,
        base,
        base_graphs,
    })
}

/// The merged segment, written and opened, and how the inputs' rows map onto it.
struct Built {
    seg: Arc<Segment>,
    rows: usize,
    graphs: Vec<GraphMeta>,
    absent: Vec<u64>,
    /// `mapping[k][old row]` = new row of input `k`'s row (`u32::MAX`: not copied, deleted).
    mapping: Vec<Vec<u32>>,
}

/// Rows of an input a merge reads before it lets their pages go (`Segment::release_rows`):
/// the merge streams its inputs' f32 rows (to the new vectors file, and into codes), so they
/// never sit in memory together (measured: a 1M x 384 merge that held them peaked at 2.2 times
/// hnswlib's build).
const RELEASE_ROWS: usize = 16_384;

/// The rows of a merge, gathered from its inputs (the base first, whole, so its graph's node
/// numbers stay valid; the others without their deleted rows): all but their vectors, which
/// `for_each_piece` streams.
struct Gathered<'a> {
    ids: Vec<PointId>,
    payloads: Vec<Option<&'a [u8]>>,
    /// Per sparse vector of the collection, one entry per row.
    sparse: Vec<Vec<Option<SparseRef<'a>>>>,
    /// Inputs in the merged order.
    order: Vec<usize>,
    mapping: Vec<Vec<u32>>,
}

fn gather<'a>(plan: &'a Plan, stop: &Stop<'_>) -> Result<Gathered<'a>> {
    let mut order: Vec<usize> = (0..plan.inputs.len()).collect();
    if let Some(b) = plan.base {
        order.retain(|&i| i != b);
        order.insert(0, b);
    }
    let fields = plan.inputs.first().map_or(0, |(s, _)| s.sparse_count());
    let mut g = Gathered {
        ids: Vec::new(),
        payloads: Vec::new(),
        sparse: vec![Vec::new(); fields],
        order: order.clone(),
        mapping: vec![Vec::new(); plan.inputs.len()],
    };
    for &k in &order {
        let (seg, deleted) = &plan.inputs[k];
        let keep_all = Some(k) == plan.base && plan.base_graphs.is_some();
        let mut map = vec![u32::MAX; seg.rows];
        for (row, slot) in map.iter_mut().enumerate() {
            if !keep_all && deleted.get(row) {
                continue;
            }
            *slot = g.ids.len() as u32;
            g.ids.push(seg.id(row)?);
            g.payloads.push(seg.payload(row)?);
            for (k, column) in g.sparse.iter_mut().enumerate() {
                column.push(match seg.sparse(k) {
                    Some(files) => files.get(row)?,
                    None => None,
                });
            }
        }
        g.mapping[k] = map;
        stop.check()?;
    }
    Ok(g)
}

/// Hand the merged rows' values to `f` in the merged order, `RELEASE_ROWS` rows (of `width`
/// values) at a time, letting each input's pages go behind the reader.
fn for_each_piece(
    plan: &Plan,
    g: &Gathered<'_>,
    width: usize,
    stop: &Stop<'_>,
    f: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    let full = RELEASE_ROWS * width.max(1);
    let mut piece: Vec<f32> = Vec::with_capacity(full);
    for &k in &g.order {
        let seg = &plan.inputs[k].0;
        for (row, &new_row) in g.mapping[k].iter().enumerate() {
            if row % RELEASE_ROWS == 0 && row > 0 {
                seg.release_rows(row - RELEASE_ROWS..row);
            }
            if new_row == u32::MAX {
                continue;
            }
            piece.extend_from_slice(seg.vector(row));
            if piece.len() >= full {
                f(&piece)?;
                piece.clear();
            }
        }
        seg.release_rows(seg.rows / RELEASE_ROWS * RELEASE_ROWS..seg.rows);
        stop.check()?;
    }
    if !piece.is_empty() {
        f(&piece)?;
    }
    Ok(())
}

/// The codes of one vector of the merged rows: int8 codes, which its graph is built on, and
/// the codes of the collection's kind for it when that is not int8.
struct SpaceCodes {
    int8: Coder,
    /// The int8 codes' rows (no prefix).
    int8_rows: Vec<u8>,
    /// The kind's coder and code file body (prefix and rows), for int4 and binary.
    other: Option<(CodeKind, Coder, Vec<u8>)>,
}

/// What the first pass over the merged rows finds: the vectors file's checksum, the rows
/// lacking each vector, and the codes' parameters.
struct Survey {
    crc: u32,
    absent: Vec<u64>,
    int8: Vec<quant::Survey>,
    other: Vec<Option<(CodeKind, quant::Survey)>>,
}

/// Write the merged segment's vectors file from its inputs, and code each vector's rows, in
/// two passes over the inputs (the first for the file's checksum and the codes' parameters):
/// the f32 rows are never all in memory. Codes are made only when `coded` (the segment gets
/// graphs).
fn write_vectors_and_code(
    col: &Collection,
    plan: &Plan,
    g: &Gathered<'_>,
    seg_dir: &std::path::Path,
    id: u64,
    coded: bool,
    stop: &Stop<'_>,
) -> Result<(Vec<u64>, Vec<SpaceCodes>)> {
    let spaces = col.config.spaces();
    let width = col.config.width();
    let rows = g.ids.len();
    let mut survey = Survey {
        crc: 0,
        absent: vec![0; spaces.len()],
        int8: Vec::new(),
        other: Vec::new(),
    };
    if coded {
        for sp in &spaces {
            survey
                .int8
                .push(quant::Survey::new(CodeKind::Int8, sp.dim, rows));
            survey.other.push(
                col.config
                    .codes_for(*sp)
                    .filter(|&k| k != CodeKind::Int8)
                    .map(|k| (k, quant::Survey::new(k, sp.dim, rows))),
            );
        }
    }
    let mut values = Vec::new();
    for_each_piece(plan, g, width, stop, &mut |piece| {
        survey.crc = crc32c::crc32c_append(survey.crc, bytemuck::cast_slice(piece));
        for (sp, absent) in spaces.iter().zip(&mut survey.absent) {
            *absent += segment::absent_rows(piece, *sp) as u64;
        }
        for ((sp, int8), other) in spaces.iter().zip(&mut survey.int8).zip(&mut survey.other) {
            values.clear();
            segment::push_space_values(piece, *sp, &mut values);
            int8.add(&values);
            if let Some((_, s)) = other {
                s.add(&values);
            }
        }
        Ok(())
    })?;
    let mut codes: Vec<SpaceCodes> = survey
        .int8
        .into_iter()
        .zip(survey.other)
        .zip(&spaces)
        .map(|((int8, other), sp)| SpaceCodes {
            int8: int8.finish(),
            int8_rows: Vec::with_capacity(rows * sp.dim),
            other: other.map(|(kind, s)| {
                let coder = s.finish();
                let mut body = coder.prefix();
                body.reserve(rows * quant::row_bytes(kind, sp.dim));
                (kind, coder, body)
            }),
        })
        .collect();
    let file = segment::start_vectors(col.fs.as_ref(), seg_dir, id, rows, width, survey.crc)?;
    for_each_piece(plan, g, width, stop, &mut |piece| {
        file.write_all(bytemuck::cast_slice(piece))?;
        for (sp, c) in spaces.iter().zip(&mut codes) {
            values.clear();
            segment::push_space_values(piece, *sp, &mut values);
            c.int8.encode(&values, &mut c.int8_rows);
            if let Some((_, coder, body)) = &mut c.other {
                coder.encode(&values, body);
            }
        }
        Ok(())
    })?;
    file.sync_data()?;
    let absent = if survey.absent.iter().all(|&n| n == 0) {
        Vec::new()
    } else {
        survey.absent
    };
    Ok((absent, codes))
}

fn build(col: &Collection, plan: &Plan, stop: &Stop<'_>) -> Result<Built> {
    let Some(dir) = &col.dir else {
        return Err(Error::internal(
            "an in-memory collection has nothing to merge",
        ));
    };
    let seg_dir = dir.join(SEGMENTS_DIR);
    let spaces = col.config.spaces();
    let hcfg = col.config.hnsw;
    let started = Instant::now();
    let g = gather(plan, stop)?;
    let rows_total = g.ids.len();
    log::info!(
        "collection {}: merging {} segment(s) into one of {rows_total} points{}",
        col.name,
        plan.inputs.len(),
        if plan.base_graphs.is_some() {
            ", extending the largest graph"
        } else {
            ""
        }
    );
    let id = col.writer.lock().take_segment_id();
    let indexed = rows_total >= hcfg.full_scan_threshold;
    let (absent, codes) = write_vectors_and_code(col, plan, &g, &seg_dir, id, indexed, stop)?;
    let gathered = started.elapsed();
    let (graphs, metas) = if indexed {
        build_graphs(col, plan, &codes, id, gathered, stop)?
    } else {
        (Vec::new(), Vec::new())
    };
    for ((sp, c), meta) in spaces.iter().zip(&codes).zip(&metas) {
        let fs = col.fs.as_ref();
        match (&c.other, meta.codes) {
            (Some((kind, _, body)), _) => {
                segment::write_code_body(fs, &seg_dir, id, *sp, *kind, rows_total, &[body])?;
            }
            (None, Some(kind)) => {
                let prefix = c.int8.prefix();
                let parts: [&[u8]; 2] = [&prefix, &c.int8_rows];
                segment::write_code_body(fs, &seg_dir, id, *sp, kind, rows_total, &parts)?;
            }
            (None, None) => {}
        }
    }
    drop(codes);
    // The vectors file and the code files are written; the graphs go with the other files.
    let graph_data: Vec<GraphData<'_>> = spaces
        .iter()
        .zip(&graphs)
        .map(|(&space, graph)| GraphData { space, graph })
        .collect();
    segment::write_segment(
        col.fs.as_ref(),
        &seg_dir,
        id,
        col.config.width() as u32,
        &SegmentData {
            ids: &g.ids,
            vectors: None,
            payloads: &g.payloads,
            sparse: &g.sparse,
        },
        &graph_data,
    )?;
    drop(graph_data);
    drop(graphs);
    let mapping = g.mapping;
    col.fs.sync_dir(&seg_dir)?;
    log::info!(
        "collection {}: merged segment written after {:.1} s",
        col.name,
        started.elapsed().as_secs_f64()
    );
    let codes: Vec<_> = metas.iter().map(|g| g.codes).collect();
    let shape = Shape {
        spaces: &spaces,
        codes: &codes,
        absent: &absent,
        sparse: col.config.sparse.len(),
        rows_from_disk: col
            .config
            .rows_from_disk_bytes(col.options.rows_from_disk_bytes),
    };
    let seg = Segment::open(col.fs.clone(), &seg_dir, id, rows_total, &shape)?;
    write_payload_indexes(col, &seg_dir, &seg)?;
    col.fs.sync_dir(&seg_dir)?;
    Ok(Built {
        seg,
        rows: rows_total,
        graphs: metas,
        absent,
        mapping,
    })
}

/// One graph per vector of the merged rows, built on their int8 codes (extending the base's,
/// if the plan keeps one), each self-checked on them; stopped between insertions by `stop`.
fn build_graphs(
    col: &Collection,
    plan: &Plan,
    codes: &[SpaceCodes],
    id: u64,
    gathered: Duration,
    stop: &Stop<'_>,
) -> Result<(Vec<Graph>, Vec<GraphMeta>)> {
    let hcfg = col.config.hnsw;
    let mut graphs = Vec::new();
    let mut metas = Vec::new();
    for (sp, c) in col.config.spaces().into_iter().zip(codes) {
        let build_started = Instant::now();
        // Rows lacking this vector were coded as zeros (never accepted as results), so a graph
        // has a node per row.
        let space = CodeSpace::new(&c.int8_rows, sp.dim, sp.distance, c.int8.scale());
        let rows_total = space.len();
        let stopped = || {
            stop.inserted(1);
            stop.stopped()
        };
        if let Some(bg) = &plan.base_graphs {
            stop.inserted(bg[sp.index].n as u64); // kept, not inserted again
        }
        let graph = match &plan.base_graphs {
            Some(bg) => hnsw::extend(&space, &bg[sp.index], id, &stopped),
            None => hnsw::build(&space, &hcfg, id, &stopped),
        };
        stop.check()?;
        let built = build_started.elapsed();
        let recall = graph.self_check(&space, hcfg.ef_construct, SELF_CHECK_SAMPLES, id);
        log::info!(
            "collection {}: graph{} over {rows_total} points built on int8 codes in {:.1} s \
             (rows written and coded in {:.1} s); self-check recall@10 {recall:.3} at ef {} \
             ({:.1} s)",
            col.name,
            match col.config.vectors[sp.index].name.as_str() {
                "" => String::new(),
                name => format!(" of vector {name:?}"),
            },
            built.as_secs_f64(),
            gathered.as_secs_f64(),
            hcfg.ef_construct,
            (build_started.elapsed() - built).as_secs_f64()
        );
        metas.push(GraphMeta {
            m: hcfg.m as u32,
            ef_construct: hcfg.ef_construct as u32,
            self_check_recall: recall,
            codes: col.config.codes_for(sp),
        });
        graphs.push(graph);
    }
    Ok((graphs, metas))
}

/// Swap the merged segment in for its inputs, with the deletions made since the plan.
fn switch(col: &Collection, inputs: &[usize], plan: &Plan, built: Built) -> Result<()> {
    let Some(dir) = &col.dir else { return Ok(()) };
    let seg_dir = dir.join(SEGMENTS_DIR);
    let mut m = col.writer.lock();
    let mut deleted = Bitmap::new(built.rows);
    {
        let st = col.state.read();
        for (k, &i) in inputs.iter().enumerate() {
            let now = &st.sources[i].deleted;
            for (row, &new_row) in built.mapping[k].iter().enumerate() {
                if new_row != u32::MAX && now.get(row) {
                    deleted.set(new_row as usize);
                }
            }
        }
    }
    let id = built.seg.id;
    let mut next = col.next_manifest(&m);
    let input_ids: Vec<u64> = plan.inputs.iter().map(|(s, _)| s.id).collect();
    next.segments.retain(|s| !input_ids.contains(&s.id));
    let deleted_name = if deleted.count_ones() > 0 {
        segment::write_deleted(
            col.fs.as_ref(),
            &seg_dir,
            id,
            next.generation,
            built.rows,
            &deleted,
        )?;
        col.fs.sync_dir(&seg_dir)?;
        Some(segment::del_name(id, next.generation))
    } else {
        None
    };
    next.segments.push(SegmentMeta {
        id,
        rows: built.rows as u64,
        deleted: deleted_name,
        graphs: built.graphs,
        indexes: built.seg.index_numbers(),
        absent: built.absent,
    });
    col.publish(&next)?;
    {
        let mut st = col.state.write();
        let mut remove: Vec<usize> = inputs.to_vec();
        remove.sort_unstable();
        for &i in remove.iter().rev() {
            st.sources.remove(i);
        }
        st.sources.push(Source {
            kind: SourceKind::Sealed(built.seg),
            deleted,
            dirty: false,
        });
    }
    *m = next;
    Ok(())
}
