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
use crate::error::{Error, Result};
use crate::index::hnsw::{self, Graph, Rows};
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

/// Rows of an input a merge copies before it lets their pages go (`Segment::release_rows`):
/// the copy, not the inputs, is what the build reads, so holding both would double the
/// merge's memory (measured: a 1M x 384 merge peaked at 2.2 times hnswlib's build).
const RELEASE_ROWS: usize = 16_384;

/// The rows of a merge, gathered from its inputs (the base first, whole, so its graph's node
/// numbers stay valid; the others without their deleted rows).
struct Gathered<'a> {
    ids: Vec<PointId>,
    vectors: Vec<f32>,
    payloads: Vec<Option<&'a [u8]>>,
    /// Per sparse vector of the collection, one entry per row.
    sparse: Vec<Vec<Option<SparseRef<'a>>>>,
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
        vectors: Vec::new(),
        payloads: Vec::new(),
        sparse: vec![Vec::new(); fields],
        mapping: vec![Vec::new(); plan.inputs.len()],
    };
    for &k in &order {
        let (seg, deleted) = &plan.inputs[k];
        let keep_all = Some(k) == plan.base && plan.base_graphs.is_some();
        let mut map = vec![u32::MAX; seg.rows];
        for (row, slot) in map.iter_mut().enumerate() {
            if row % RELEASE_ROWS == 0 && row > 0 {
                seg.release_rows(row - RELEASE_ROWS..row);
            }
            if !keep_all && deleted.get(row) {
                continue;
            }
            *slot = g.ids.len() as u32;
            g.ids.push(seg.id(row)?);
            g.vectors.extend_from_slice(seg.vector(row));
            g.payloads.push(seg.payload(row)?);
            for (k, column) in g.sparse.iter_mut().enumerate() {
                column.push(match seg.sparse(k) {
                    Some(files) => files.get(row)?,
                    None => None,
                });
            }
        }
        seg.release_rows(seg.rows / RELEASE_ROWS * RELEASE_ROWS..seg.rows);
        g.mapping[k] = map;
        stop.check()?;
    }
    Ok(g)
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
    let gathered = started.elapsed();
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
    let absent = segment::absent_counts(&g.vectors, &spaces);
    let (graphs, metas) = if rows_total >= hcfg.full_scan_threshold {
        build_graphs(col, plan, &g.vectors, id, &absent, gathered, stop)?
    } else {
        (Vec::new(), Vec::new())
    };
    let graph_data: Vec<GraphData<'_>> = spaces
        .iter()
        .zip(&graphs)
        .zip(&metas)
        .map(|((&space, graph), meta)| GraphData {
            space,
            graph,
            codes: meta.codes,
        })
        .collect();
    segment::write_segment(
        col.fs.as_ref(),
        &seg_dir,
        id,
        col.config.width() as u32,
        &SegmentData {
            ids: &g.ids,
            vectors: &g.vectors,
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
        rows_from_disk: col.options.rows_from_disk_bytes,
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

/// One graph per vector over the gathered rows (extending the base's, if the plan keeps one),
/// each self-checked; stopped between insertions by `stop`.
fn build_graphs(
    col: &Collection,
    plan: &Plan,
    vectors: &[f32],
    id: u64,
    absent: &[u64],
    gathered: Duration,
    stop: &Stop<'_>,
) -> Result<(Vec<Graph>, Vec<GraphMeta>)> {
    let hcfg = col.config.hnsw;
    let rows_total = vectors.len() / col.config.width().max(1);
    let mut graphs = Vec::new();
    let mut metas = Vec::new();
    for sp in col.config.spaces() {
        let build_started = Instant::now();
        // Rows lacking this vector join the graph as zeros (never accepted as results), so
        // a graph has a node per row; otherwise the rows are read in place.
        let finite = match absent.get(sp.index) {
            Some(&n) if n > 0 => Some(segment::space_values(vectors, sp)),
            _ => None,
        };
        let rows = match &finite {
            Some(values) => Rows::dense(values, sp.dim),
            None => Rows::of(vectors, sp),
        };
        let metric = sp.distance;
        let stopped = || {
            stop.inserted(1);
            stop.stopped()
        };
        if let Some(bg) = &plan.base_graphs {
            stop.inserted(bg[sp.index].n as u64); // kept, not inserted again
        }
        let graph = match &plan.base_graphs {
            Some(bg) => hnsw::extend(rows, metric, &bg[sp.index], id, &stopped),
            None => hnsw::build(rows, metric, &hcfg, id, &stopped),
        };
        stop.check()?;
        let built = build_started.elapsed();
        let recall = graph.self_check(rows, metric, hcfg.ef_construct, SELF_CHECK_SAMPLES, id);
        log::info!(
            "collection {}: graph{} over {rows_total} points built in {:.1} s (rows gathered in {:.1} s); \
             self-check recall@10 {recall:.3} at ef {} ({:.1} s)",
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
