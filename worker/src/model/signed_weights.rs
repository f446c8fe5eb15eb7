//! Signed int8 weights for ONNX Runtime's CPU kernels, with outputs unchanged.
//!
//! Models quantised the TFLite way (the default model among them) store conv weights as
//! **uint8** with a uint8 zero point. ORT runs such a QDQ conv with its u8×u8 kernels; with
//! int8 weights it picks the u8×s8 ones, which on CPUs with AVX512-VNNI (`vpdpbusd`: u8×s8
//! products summed in int32, no saturation) are exact and markedly faster. The rewrite is exact
//! by construction: every `DequantizeLinear(x: u8, scale, zp: u8)` whose `x` and `zp` are
//! constants becomes `DequantizeLinear(x − 128: i8, scale, zp − 128: i8)`, and
//! `((x − 128) − (zp − 128)) · scale = (x − zp) · scale` for every element. Constants another
//! node still reads are kept beside their int8 copies.
//!
//! It is applied only where that exactness carries through ORT's kernels ([`cpu_is_exact`]):
//! on x86-64 without VNNI the u8×s8 path multiplies with `vpmaddubsw`, whose int16 pair sums can
//! saturate. A model it cannot read, or one with subgraphs, external data or no uint8 weights,
//! is loaded as it is.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::wire::{self, Field, WireError};

/// Whether `labeljob` re-signs uint8 weights when it loads a model on CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightSigning {
    /// Re-sign when this CPU's int8 kernels are exact for it (x86-64 with AVX512-VNNI).
    #[default]
    Auto,
    /// Load the model file as it is.
    Off,
}

/// True where ORT's u8×s8 kernels compute exact int32 sums (see the module header).
pub fn cpu_is_exact() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A model whose uint8 weights were re-signed.
#[derive(Debug)]
pub struct Resigned {
    /// The rewritten model.
    pub bytes: Vec<u8>,
    /// `DequantizeLinear` nodes rewritten.
    pub nodes: usize,
}

// Field numbers of onnx.proto3 used here.
const MODEL_IR_VERSION: u32 = 1;
const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const GRAPH_OUTPUT: u32 = 12;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_OP_TYPE: u32 = 4;
const NODE_ATTRIBUTE: u32 = 5;
const NODE_DOMAIN: u32 = 7;
const ATTR_GRAPH: u32 = 6;
const ATTR_GRAPHS: u32 = 11;
const VALUE_INFO_NAME: u32 = 1;
const TENSOR_DIMS: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_INT32_DATA: u32 = 5;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
const TENSOR_SEGMENT: u32 = 3;
const TENSOR_EXTERNAL_DATA: u32 = 13;
const TENSOR_DATA_LOCATION: u32 = 14;
const UINT8: u64 = 2;
const INT8: u64 = 3;
/// IR version 4 made initializers independent of graph inputs.
const MIN_IR_VERSION: u64 = 4;

/// A constant as far as the rewrite needs it (its values are read again from the graph only
/// for the constants rewritten, so a large model is not copied whole).
struct Constant {
    /// Index of its field in the graph.
    field: usize,
    dims: Vec<u64>,
    data_type: u64,
    /// Whether it holds uint8 values inline, as many as its dims say.
    inline_u8: bool,
    external: bool,
}

fn constant(fields: &[Field<'_>], field: usize) -> Constant {
    let data_type =
        wire::repeated_varints(fields, TENSOR_DATA_TYPE).and_then(|v| v.last().copied()).unwrap_or(0);
    let dims = wire::repeated_varints(fields, TENSOR_DIMS).unwrap_or_default();
    let external = fields.iter().any(|f| {
        f.number == TENSOR_EXTERNAL_DATA
            || f.number == TENSOR_SEGMENT
            || (f.number == TENSOR_DATA_LOCATION && f.value != wire::Value::Varint(0))
    });
    let inline_u8 = data_type == UINT8 && !external && u8_data(fields, &dims).is_some();
    Constant { field, dims, data_type, inline_u8, external }
}

/// The uint8 values of a tensor held inline (raw_data, else int32_data), when there are as
/// many as its dims say; raw data is borrowed, not copied.
fn u8_data<'f>(fields: &'f [Field<'_>], dims: &[u64]) -> Option<Cow<'f, [u8]>> {
    let count = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d)).and_then(|n| usize::try_from(n).ok())?;
    let values: Cow<'f, [u8]> =
        match fields.iter().rfind(|f| f.number == TENSOR_RAW_DATA).and_then(Field::bytes) {
            Some(b) => Cow::Borrowed(b),
            None => Cow::Owned(
                wire::repeated_varints(fields, TENSOR_INT32_DATA)?
                    .into_iter()
                    .map(|v| u8::try_from(v).ok())
                    .collect::<Option<Vec<u8>>>()?,
            ),
        };
    (values.len() == count).then_some(values)
}

fn int8_tensor(name: &str, dims: &[u64], values: &[u8]) -> Vec<u8> {
    let mut fields: Vec<Field<'_>> = dims.iter().map(|&d| Field::varint(TENSOR_DIMS, d)).collect();
    fields.push(Field::varint(TENSOR_DATA_TYPE, INT8));
    fields.push(Field::len(TENSOR_NAME, name.as_bytes().to_vec()));
    // x − 128 as two's complement is x with its top bit flipped
    fields.push(Field::len(TENSOR_RAW_DATA, values.iter().map(|v| v ^ 0x80).collect::<Vec<u8>>()));
    wire::write(&fields)
}

/// Whether every field numbered one of `numbers` is UTF-8, as onnx.proto's strings must be (a
/// name that is not would read as "" here and could be confused with another).
fn utf8(fields: &[Field<'_>], numbers: &[u32]) -> bool {
    fields.iter().filter(|f| numbers.contains(&f.number)).all(|f| f.str().is_some())
}

fn strings<'f>(fields: &'f [Field<'_>], number: u32) -> impl Iterator<Item = &'f str> {
    fields.iter().filter(move |f| f.number == number).map(|f| f.str().unwrap_or(""))
}

/// Re-sign the uint8 weights of `model` (the bytes of an ONNX file). `Ok(None)`: nothing to
/// rewrite, or a model this rewrite leaves alone (see the module header). `Err`: the bytes are
/// not a protobuf message.
pub fn resign(model: &[u8]) -> Result<Option<Resigned>, WireError> {
    let mut top = wire::parse(model)?;
    let ir = wire::repeated_varints(&top, MODEL_IR_VERSION).and_then(|v| v.last().copied()).unwrap_or(0);
    let graphs: Vec<usize> = (0..top.len()).filter(|&i| top[i].number == MODEL_GRAPH).collect();
    let [graph_at] = graphs[..] else { return Ok(None) };
    if ir < MIN_IR_VERSION {
        return Ok(None);
    }
    let graph_bytes = top[graph_at].bytes().unwrap_or_default().to_vec();
    let view = wire::parse(&graph_bytes)?;

    let mut constants: HashMap<String, Constant> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut nodes: Vec<(usize, Vec<Field<'_>>)> = Vec::new();
    let mut kept: HashSet<String> = HashSet::new(); // graph inputs and outputs
    for (i, f) in view.iter().enumerate() {
        let Some(bytes) = f.bytes() else { continue };
        match f.number {
            GRAPH_INITIALIZER => {
                let fields = wire::parse(bytes)?;
                if !utf8(&fields, &[TENSOR_NAME]) {
                    return Ok(None);
                }
                let name = strings(&fields, TENSOR_NAME).last().unwrap_or("").to_string();
                let c = constant(&fields, i);
                if c.external {
                    // loading from memory would lose the file's directory for external data
                    return Ok(None);
                }
                names.insert(name.clone());
                constants.insert(name, c);
            }
            GRAPH_NODE => {
                let fields = wire::parse(bytes)?;
                if !utf8(&fields, &[NODE_INPUT, NODE_OUTPUT, NODE_OP_TYPE, NODE_DOMAIN]) {
                    return Ok(None);
                }
                for a in fields.iter().filter(|a| a.number == NODE_ATTRIBUTE) {
                    let attr = wire::parse(a.bytes().unwrap_or_default())?;
                    if attr.iter().any(|x| x.number == ATTR_GRAPH || x.number == ATTR_GRAPHS) {
                        return Ok(None);
                    }
                }
                names.extend(strings(&fields, NODE_OUTPUT).map(str::to_string));
                nodes.push((i, fields));
            }
            GRAPH_INPUT | GRAPH_OUTPUT => {
                let info = wire::parse(bytes)?;
                for n in strings(&info, VALUE_INFO_NAME) {
                    kept.insert(n.to_string());
                    names.insert(n.to_string());
                }
            }
            _ => {}
        }
    }

    let is_u8_constant = |name: &str| {
        constants.get(name).is_some_and(|c| c.data_type == UINT8 && c.inline_u8) && !kept.contains(name)
    };
    let mut graph = view.clone();
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut count = 0;
    for (at, fields) in &mut nodes {
        let op = strings(fields, NODE_OP_TYPE).last().unwrap_or("");
        let domain = strings(fields, NODE_DOMAIN).last().unwrap_or("");
        let inputs: Vec<String> = strings(fields, NODE_INPUT).map(str::to_string).collect();
        if op != "DequantizeLinear" || !(domain.is_empty() || domain == "ai.onnx") || inputs.len() != 3 {
            continue;
        }
        let (x, zp) = (&inputs[0], &inputs[2]);
        if !is_u8_constant(x) || !is_u8_constant(zp) || x == zp {
            continue;
        }
        for name in [x, zp] {
            if !renamed.contains_key(name) {
                let mut fresh = format!("{name}.labeljob_int8");
                while names.contains(&fresh) {
                    fresh.push('_');
                }
                names.insert(fresh.clone());
                renamed.insert(name.clone(), fresh);
            }
        }
        for (k, f) in fields.iter_mut().filter(|f| f.number == NODE_INPUT).enumerate() {
            if k == 0 || k == 2 {
                *f = Field::len(NODE_INPUT, renamed[&inputs[k]].as_bytes().to_vec());
            }
        }
        graph[*at] = Field::len(GRAPH_NODE, wire::write(fields));
        count += 1;
    }
    if count == 0 {
        return Ok(None);
    }

    // drop the uint8 originals no node reads any more, then add the int8 copies
    let still_read: HashSet<&str> = nodes.iter().flat_map(|(_, f)| strings(f, NODE_INPUT)).collect();
    let mut drop: HashSet<usize> = HashSet::new();
    let mut added = Vec::with_capacity(renamed.len());
    let mut sorted: Vec<(&String, &String)> = renamed.iter().collect();
    sorted.sort();
    for (old, new) in sorted {
        let c = &constants[old];
        if !still_read.contains(old.as_str()) {
            drop.insert(c.field);
        }
        let fields = wire::parse(view[c.field].bytes().unwrap_or_default())?;
        let values = u8_data(&fields, &c.dims).unwrap_or_default();
        added.push(Field::len(GRAPH_INITIALIZER, int8_tensor(new, &c.dims, &values)));
    }
    let mut out: Vec<Field<'_>> =
        graph.into_iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, f)| f).collect();
    out.extend(added);
    top[graph_at] = Field::len(MODEL_GRAPH, wire::write(&out));
    Ok(Some(Resigned { bytes: wire::write(&top), nodes: count }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOAT: u64 = 1;

    fn tensor(name: &str, data_type: u64, dims: &[u64], raw: &[u8]) -> Field<'static> {
        let mut f: Vec<Field<'_>> = dims.iter().map(|&d| Field::varint(TENSOR_DIMS, d)).collect();
        f.push(Field::varint(TENSOR_DATA_TYPE, data_type));
        f.push(Field::len(TENSOR_NAME, name.as_bytes().to_vec()));
        f.push(Field::len(TENSOR_RAW_DATA, raw.to_vec()));
        Field::len(GRAPH_INITIALIZER, wire::write(&f))
    }

    fn node(op: &str, inputs: &[&str], output: &str) -> Field<'static> {
        let mut f: Vec<Field<'_>> =
            inputs.iter().map(|i| Field::len(NODE_INPUT, i.as_bytes().to_vec())).collect();
        f.push(Field::len(NODE_OUTPUT, output.as_bytes().to_vec()));
        f.push(Field::len(NODE_OP_TYPE, op.as_bytes().to_vec()));
        Field::len(GRAPH_NODE, wire::write(&f))
    }

    fn value_info(number: u32, name: &str) -> Field<'static> {
        Field::len(number, wire::write(&[Field::len(VALUE_INFO_NAME, name.as_bytes().to_vec())]))
    }

    fn model(ir: u64, graph: Vec<Field<'_>>) -> Vec<u8> {
        // a field this code does not know (producer_name) must survive
        wire::write(&[
            Field::varint(MODEL_IR_VERSION, ir),
            Field::len(2, b"test".to_vec()),
            Field::len(MODEL_GRAPH, wire::write(&graph)),
        ])
    }

    /// A conv-like graph: DQ(w: u8, s, zp: u8) and an activation Q/DQ sharing `zp`.
    fn qdq_graph() -> Vec<Field<'static>> {
        vec![
            value_info(GRAPH_INPUT, "input"),
            node("QuantizeLinear", &["input", "s", "zp"], "q"),
            node("DequantizeLinear", &["q", "s", "zp"], "a"),
            node("DequantizeLinear", &["w", "s", "zp"], "wf"),
            node("Conv", &["a", "wf"], "out"),
            value_info(GRAPH_OUTPUT, "out"),
            tensor("w", UINT8, &[2, 2], &[0, 127, 128, 255]),
            tensor("s", FLOAT, &[], &0.5f32.to_le_bytes()),
            tensor("zp", UINT8, &[], &[131]),
        ]
    }

    struct Parsed {
        tensors: HashMap<String, (u64, Vec<u8>)>,
        nodes: Vec<(String, Vec<String>)>,
    }

    fn parse_model(bytes: &[u8]) -> Parsed {
        let top = wire::parse(bytes).expect("test data");
        assert_eq!(top[1], Field::len(2, b"test".to_vec()));
        let graph = wire::parse(top[2].bytes().expect("test data")).expect("test data");
        let mut p = Parsed { tensors: HashMap::new(), nodes: Vec::new() };
        for f in &graph {
            let inner = wire::parse(f.bytes().expect("test data")).expect("test data");
            match f.number {
                GRAPH_INITIALIZER => {
                    let name = strings(&inner, TENSOR_NAME).next().expect("test data").to_string();
                    let ty = wire::repeated_varints(&inner, TENSOR_DATA_TYPE).expect("test data")[0];
                    let raw = inner
                        .iter()
                        .find(|x| x.number == TENSOR_RAW_DATA)
                        .expect("test data")
                        .bytes()
                        .expect("test data")
                        .to_vec();
                    p.tensors.insert(name, (ty, raw));
                }
                GRAPH_NODE => p.nodes.push((
                    strings(&inner, NODE_OP_TYPE).next().expect("test data").to_string(),
                    strings(&inner, NODE_INPUT).map(str::to_string).collect(),
                )),
                _ => {}
            }
        }
        p
    }

    #[test]
    fn weights_and_their_zero_point_become_int8_and_the_activation_path_is_untouched() {
        let r = resign(&model(8, qdq_graph())).expect("test data").expect("rewritten");
        assert_eq!(r.nodes, 1);
        let p = parse_model(&r.bytes);
        // x − 128 and zp − 128, as int8
        let w = &p.tensors["w.labeljob_int8"];
        assert_eq!(w.0, INT8);
        assert_eq!(w.1.iter().map(|&b| b as i8).collect::<Vec<_>>(), [-128, -1, 0, 127]);
        assert_eq!(p.tensors["zp.labeljob_int8"], (INT8, vec![3]));
        // the same dequantised values: (x − zp) · s
        for (u, s) in [0u8, 127, 128, 255].iter().zip(&w.1) {
            assert_eq!(i32::from(*u) - 131, i32::from(*s as i8) - 3);
        }
        // w had no other reader: dropped; zp is still read by the activation Q/DQ: kept
        assert!(!p.tensors.contains_key("w"));
        assert_eq!(p.tensors["zp"], (UINT8, vec![131]));
        assert_eq!(p.tensors["s"].0, FLOAT);
        assert_eq!(p.nodes[0], ("QuantizeLinear".into(), vec!["input".into(), "s".into(), "zp".into()]));
        assert_eq!(p.nodes[1].1, ["q", "s", "zp"]);
        assert_eq!(p.nodes[2].1, ["w.labeljob_int8", "s", "zp.labeljob_int8"]);
        assert_eq!(p.nodes[3].1, ["a", "wf"]);
    }

    #[test]
    fn shared_weights_are_copied_once_and_fresh_names_do_not_collide() {
        let mut g = qdq_graph();
        g.push(node("DequantizeLinear", &["w", "s", "zp"], "wf2"));
        g.push(tensor("w.labeljob_int8", FLOAT, &[], &[0; 4]));
        let r = resign(&model(8, g)).expect("test data").expect("rewritten");
        assert_eq!(r.nodes, 2);
        let p = parse_model(&r.bytes);
        assert_eq!(p.tensors["w.labeljob_int8"].0, FLOAT, "an existing name is left alone");
        assert_eq!(p.tensors["w.labeljob_int8_"].0, INT8);
        assert_eq!(p.tensors.len(), 5, "w dropped; s, zp, the clash, one int8 w and one int8 zp");
        assert_eq!(p.nodes[2].1, p.nodes[4].1);
    }

    #[test]
    fn models_it_cannot_rewrite_exactly_are_left_alone() {
        // nothing uint8
        let mut g = qdq_graph();
        g.pop();
        g.push(tensor("zp", INT8, &[], &[3]));
        assert!(resign(&model(8, g)).expect("test data").is_none());
        // IR version 3: initializers double as graph inputs
        assert!(resign(&model(3, qdq_graph())).expect("test data").is_none());
        // a weight that is also a graph input (a feed could replace it)
        let mut g = qdq_graph();
        g.push(value_info(GRAPH_INPUT, "w"));
        assert!(resign(&model(8, g)).expect("test data").is_none());
        // raw data that does not match the dims
        let mut g = qdq_graph();
        g[6] = tensor("w", UINT8, &[2, 3], &[0, 1, 2, 3]);
        assert!(resign(&model(8, g)).expect("test data").is_none());
        // external data anywhere: loading from memory would lose its directory
        let mut g = qdq_graph();
        g.push(Field::len(
            GRAPH_INITIALIZER,
            wire::write(&[Field::len(TENSOR_NAME, b"big".to_vec()), Field::varint(TENSOR_DATA_LOCATION, 1)]),
        ));
        assert!(resign(&model(8, g)).expect("test data").is_none());
        // a subgraph (If/Loop bodies may read outer names)
        let mut g = qdq_graph();
        let attr = wire::write(&[Field::len(1, b"then_branch".to_vec()), Field::len(ATTR_GRAPH, Vec::new())]);
        g.push(Field::len(
            GRAPH_NODE,
            wire::write(&[Field::len(NODE_OP_TYPE, b"If".to_vec()), Field::len(NODE_ATTRIBUTE, attr)]),
        ));
        assert!(resign(&model(8, g)).expect("test data").is_none());
        // a name that is not UTF-8
        let mut g = qdq_graph();
        g.push(Field::len(GRAPH_NODE, wire::write(&[Field::len(NODE_INPUT, vec![0xff])])));
        assert!(resign(&model(8, g)).expect("test data").is_none());
        // two graphs
        let mut two = model(8, qdq_graph());
        two.extend(wire::write(&[Field::len(MODEL_GRAPH, Vec::new())]));
        assert!(resign(&two).expect("test data").is_none());
    }

    #[test]
    fn bytes_that_are_not_a_model_are_an_error() {
        assert!(resign(b"\x0a\xff\xff\xff\xff\x0f").is_err());
        assert!(
            resign(&[0x08, 0x08, 0x3a, 0x03, 0x0a, 0x05, 0x00]).is_err(),
            "a graph whose node overruns it"
        );
        assert!(resign(b"").expect("test data").is_none());
    }

    #[test]
    fn uint8_values_in_int32_data_are_read_too() {
        let mut g = qdq_graph();
        let t = wire::write(&[
            Field::varint(TENSOR_DIMS, 3),
            Field::varint(TENSOR_DATA_TYPE, UINT8),
            Field::len(TENSOR_NAME, b"w".to_vec()),
            Field::len(TENSOR_INT32_DATA, vec![0x00, 0x80, 0x01, 0x05]),
        ]);
        g[6] = Field::len(GRAPH_INITIALIZER, t);
        let p = parse_model(&resign(&model(8, g)).expect("test data").expect("rewritten").bytes);
        assert_eq!(
            p.tensors["w.labeljob_int8"].1.iter().map(|&b| b as i8).collect::<Vec<_>>(),
            [-128, 0, -123]
        );
        // an int32 value above 255 is not a uint8 tensor
        let mut g = qdq_graph();
        let t = wire::write(&[
            Field::varint(TENSOR_DIMS, 1),
            Field::varint(TENSOR_DATA_TYPE, UINT8),
            Field::len(TENSOR_NAME, b"w".to_vec()),
            Field::len(TENSOR_INT32_DATA, vec![0x80, 0x02]),
        ]);
        g[6] = Field::len(GRAPH_INITIALIZER, t);
        assert!(resign(&model(8, g)).expect("test data").is_none());
    }
}
