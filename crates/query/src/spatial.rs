//! Spatial functions over GeoJSON, on the WGS-84 ellipsoid as Cosmos DB's geography is.
//!
//! - `ST_DISTANCE` is geodesic (Karney's algorithms, through `geographiclib-rs`). Between two
//!   points it is the length of the geodesic joining them. Between any other pair it is 0 when
//!   the geometries intersect (a point inside a polygon included), and otherwise the shortest
//!   geodesic distance from a vertex of one to an edge of the other, the nearest point on an
//!   edge found by a golden-section search along that edge's geodesic.
//! - `ST_AREA` sums geodesic ring areas, holes subtracted.
//! - `ST_INTERSECTS` and `ST_WITHIN` are decided on the sphere: edges are great-circle arcs,
//!   points are unit vectors, and a point is inside a ring when the ring winds around it and it
//!   lies on the ring's side of the globe. Polygons are taken as the smaller region their outer
//!   ring bounds (ring orientation is not read), so a polygon must be smaller than a hemisphere.
//! - `ST_ISVALID` / `ST_ISVALIDDETAILED` check a geometry by Cosmos DB's rules (positions in
//!   range, lines of two positions or more, rings closed and long enough).

use geographiclib_rs::{DirectGeodesic, Geodesic, InverseGeodesic, PolygonArea, Winding};
use serde_json::{Map, Value};

/// A position: longitude, latitude (degrees).
type Position = (f64, f64);

/// A geometry this module reads.
enum Geometry {
    Point(Position),
    LineString(Vec<Position>),
    /// Rings: the outer one first, then holes.
    Polygon(Vec<Vec<Position>>),
    MultiPolygon(Vec<Vec<Vec<Position>>>),
}

/// Reads a GeoJSON geometry; `Err` says why it is not a valid one.
fn parse(value: &Value) -> Result<Geometry, String> {
    let object = value
        .as_object()
        .ok_or("a geometry must be a GeoJSON object")?;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or("a geometry needs a string 'type'")?;
    let coordinates = object
        .get("coordinates")
        .ok_or("a geometry needs 'coordinates'")?;
    match kind {
        "Point" => Ok(Geometry::Point(position(coordinates)?)),
        "LineString" => {
            let line = positions(coordinates)?;
            if line.len() < 2 {
                return Err("a LineString needs at least two positions".to_owned());
            }
            Ok(Geometry::LineString(line))
        }
        "Polygon" => Ok(Geometry::Polygon(polygon(coordinates)?)),
        "MultiPolygon" => Ok(Geometry::MultiPolygon(
            list(coordinates, "a MultiPolygon's coordinates")?
                .iter()
                .map(polygon)
                .collect::<Result<_, _>>()?,
        )),
        other => Err(format!(
            "the geometry type '{other}' is not one of Point, LineString, Polygon, MultiPolygon"
        )),
    }
}

fn list<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} must be an array"))
}

fn position(value: &Value) -> Result<Position, String> {
    let numbers = list(value, "a position")?;
    let (Some(longitude), Some(latitude)) = (
        numbers.first().and_then(Value::as_f64),
        numbers.get(1).and_then(Value::as_f64),
    ) else {
        return Err("a position is [longitude, latitude] in numbers".to_owned());
    };
    if numbers.len() > 3 || numbers.iter().any(|n| !n.is_number()) {
        return Err(
            "a position is [longitude, latitude] or [longitude, latitude, altitude]".to_owned(),
        );
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(format!("the longitude {longitude} is outside -180 to 180"));
    }
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(format!("the latitude {latitude} is outside -90 to 90"));
    }
    Ok((longitude, latitude))
}

fn positions(value: &Value) -> Result<Vec<Position>, String> {
    list(value, "a line's coordinates")?
        .iter()
        .map(position)
        .collect()
}

fn polygon(value: &Value) -> Result<Vec<Vec<Position>>, String> {
    let rings = list(value, "a Polygon's coordinates")?;
    if rings.is_empty() {
        return Err("a Polygon needs at least one ring".to_owned());
    }
    rings
        .iter()
        .enumerate()
        .map(|(index, ring)| {
            let ring = positions(ring)?;
            if ring.len() < 4 {
                return Err(format!(
                    "ring {} of a Polygon has {} positions; a ring needs at least 4",
                    index + 1,
                    ring.len()
                ));
            }
            if ring.first() != ring.last() {
                return Err(format!(
                    "ring {} of a Polygon does not end where it starts",
                    index + 1
                ));
            }
            Ok(ring)
        })
        .collect()
}

/// `ST_ISVALID(geometry)`.
pub(crate) fn is_valid(value: Option<&Value>) -> Value {
    Value::Bool(value.is_some_and(|value| parse(value).is_ok()))
}

/// `ST_ISVALIDDETAILED(geometry)`: `{"valid": bool, "reason": text}`.
pub(crate) fn is_valid_detailed(value: Option<&Value>) -> Value {
    let verdict = match value {
        None => Err("the argument is undefined".to_owned()),
        Some(value) => parse(value).map(|_| ()),
    };
    let mut result = Map::new();
    result.insert("valid".into(), Value::Bool(verdict.is_ok()));
    result.insert(
        "reason".into(),
        Value::from(verdict.err().unwrap_or_else(|| "Valid Geometry".to_owned())),
    );
    Value::Object(result)
}

/// `ST_DISTANCE(a, b)` in meters; `None` (undefined) when either is not a valid geometry.
pub(crate) fn distance(a: Option<&Value>, b: Option<&Value>) -> Option<f64> {
    let (a, b) = (Shape::of(&parse(a?).ok()?), Shape::of(&parse(b?).ok()?));
    let meters = if a.intersects(&b) {
        0.0
    } else {
        let geodesic = Geodesic::wgs84();
        let mut nearest = f64::INFINITY;
        for (from, to) in [(&a, &b), (&b, &a)] {
            for &point in &from.vertices {
                for &other in &to.vertices {
                    nearest = nearest.min(point_distance(&geodesic, point, other));
                }
                for &(start, end) in &to.edges {
                    nearest = nearest.min(edge_distance(&geodesic, point, start, end));
                }
            }
        }
        nearest
    };
    meters.is_finite().then_some(meters)
}

/// `ST_INTERSECTS(a, b)`; undefined when either is not a valid geometry.
pub(crate) fn intersects(a: Option<&Value>, b: Option<&Value>) -> Option<bool> {
    let (a, b) = (parse(a?).ok()?, parse(b?).ok()?);
    Some(Shape::of(&a).intersects(&Shape::of(&b)))
}

/// `ST_WITHIN(a, b)`: whether `a` lies inside `b`; undefined when either is not a valid
/// geometry. A point on a polygon's boundary is not within it; a line or polygon is within a
/// polygon when all its vertices and edge midpoints are inside or on the boundary and none of
/// its edges crosses the boundary.
pub(crate) fn within(a: Option<&Value>, b: Option<&Value>) -> Option<bool> {
    let (a, b) = (parse(a?).ok()?, parse(b?).ok()?);
    let (inner, outer) = (Shape::of(&a), Shape::of(&b));
    let inside = match (&a, &b) {
        (_, Geometry::Point(target)) => {
            matches!(a, Geometry::Point(point) if unit(point) == unit(*target))
        }
        (Geometry::Polygon(_) | Geometry::MultiPolygon(_), Geometry::LineString(_)) => false,
        (_, Geometry::LineString(_)) => inner
            .vertices
            .iter()
            .chain(inner.edge_midpoints().iter())
            .all(|&point| outer.on_edges(point)),
        (Geometry::Point(point), _) => {
            outer.in_polygons(unit(*point)) && !outer.on_edges(unit(*point))
        }
        _ => {
            let covered = inner
                .vertices
                .iter()
                .chain(inner.edge_midpoints().iter())
                .all(|&point| outer.in_polygons(point) || outer.on_edges(point));
            let crossed = inner
                .edges
                .iter()
                .any(|&(p, q)| outer.edges.iter().any(|&(r, t)| arcs_cross(p, q, r, t)));
            // A hole of the outer polygon that sits inside the inner one leaves a gap.
            let hole_inside = outer
                .vertices
                .iter()
                .any(|&point| inner.in_polygons(point) && !inner.on_edges(point));
            covered && !crossed && !hole_inside
        }
    };
    Some(inside)
}

/// `ST_AREA(polygon)` in square meters: the outer rings' geodesic areas less their holes'.
/// Undefined for anything but a valid Polygon or MultiPolygon.
pub(crate) fn area(value: Option<&Value>) -> Option<Value> {
    let polygons = match parse(value?).ok()? {
        Geometry::Polygon(rings) => vec![rings],
        Geometry::MultiPolygon(polygons) => polygons,
        Geometry::Point(_) | Geometry::LineString(_) => return None,
    };
    let geodesic = Geodesic::wgs84();
    let ring_area = |ring: &[Position]| {
        let mut area = PolygonArea::new(&geodesic, Winding::CounterClockwise);
        // The closing position repeats the first; the area closes the ring itself.
        for &(longitude, latitude) in &ring[..ring.len() - 1] {
            area.add_point(latitude, longitude);
        }
        let (_, square_meters, _) = area.compute(false);
        square_meters.abs()
    };
    let total: f64 = polygons
        .iter()
        .map(|rings| {
            let outer = ring_area(&rings[0]);
            let holes: f64 = rings[1..].iter().map(|ring| ring_area(ring)).sum();
            outer - holes
        })
        .sum();
    serde_json::Number::from_f64(total).map(Value::Number)
}

/// A unit vector: a position on the unit sphere.
type Unit = [f64; 3];

/// Angles below this (radians, about 0.6 mm on the Earth) count as zero in the predicates.
const ANGLE_EPSILON: f64 = 1e-10;
/// Golden-section steps when searching an edge for its point nearest another point; each step
/// shrinks the interval by 0.618, so 60 steps reach well below a millimetre on any edge.
const NEAREST_POINT_STEPS: usize = 60;

fn unit((longitude, latitude): Position) -> Unit {
    let (lon, lat) = (longitude.to_radians(), latitude.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

fn degrees(point: Unit) -> Position {
    let [x, y, z] = point;
    (y.atan2(x).to_degrees(), z.atan2(x.hypot(y)).to_degrees())
}

fn dot(a: Unit, b: Unit) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: Unit, b: Unit) -> Unit {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn add(a: Unit, b: Unit) -> Unit {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// The angle between two unit vectors, in radians.
fn angle(a: Unit, b: Unit) -> f64 {
    let c = cross(a, b);
    dot(c, c).sqrt().atan2(dot(a, b))
}

/// Which side of the great circle through `a` and `b` the point `p` is on: -1, 0 or 1.
fn side(a: Unit, b: Unit, p: Unit) -> i8 {
    let n = cross(a, b);
    let value = dot(n, p) / dot(n, n).sqrt().max(f64::MIN_POSITIVE);
    if value.abs() <= ANGLE_EPSILON {
        0
    } else if value > 0.0 {
        1
    } else {
        -1
    }
}

/// Whether `p` lies on the arc from `a` to `b`.
fn on_arc(p: Unit, a: Unit, b: Unit) -> bool {
    (angle(a, p) + angle(p, b) - angle(a, b)).abs() <= ANGLE_EPSILON
}

/// Whether the arcs `a`–`b` and `c`–`d` cross at a point inside both (touching does not
/// count; the callers test touching with [`on_arc`]).
fn arcs_cross(a: Unit, b: Unit, c: Unit, d: Unit) -> bool {
    let straddles = side(a, b, c) * side(a, b, d) < 0 && side(c, d, a) * side(c, d, b) < 0;
    // Two great circles meet twice; the crossing must be the one near both arcs.
    straddles && {
        let meet = cross(cross(a, b), cross(c, d));
        let near_first = dot(meet, add(a, b)).signum();
        near_first * dot(meet, add(c, d)) > 0.0
    }
}

/// Whether the ring winds around `p` (which must not lie on it) and `p` is on the ring's side
/// of the globe, i.e. within the smaller region the ring bounds.
fn in_ring(p: Unit, ring: &[Unit]) -> bool {
    let mut winding = 0.0;
    let mut centre = [0.0; 3];
    for pair in ring.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        winding += dot(p, cross(a, b)).atan2(dot(a, b) - dot(a, p) * dot(b, p));
        centre = add(centre, a);
    }
    winding.abs() > std::f64::consts::PI && dot(p, centre) > 0.0
}

/// A geometry as the predicates see it: its vertices, its edges and its polygons.
struct Shape {
    vertices: Vec<Unit>,
    edges: Vec<(Unit, Unit)>,
    /// Each polygon's rings as unit vectors, the outer ring first.
    polygons: Vec<Vec<Vec<Unit>>>,
}

impl Shape {
    fn of(geometry: &Geometry) -> Shape {
        let rings_of = |rings: &[Vec<Position>]| -> Vec<Vec<Unit>> {
            rings
                .iter()
                .map(|ring| ring.iter().copied().map(unit).collect())
                .collect()
        };
        let (lines, polygons): (Vec<Vec<Unit>>, Vec<Vec<Vec<Unit>>>) = match geometry {
            Geometry::Point(point) => {
                return Shape {
                    vertices: vec![unit(*point)],
                    edges: Vec::new(),
                    polygons: Vec::new(),
                };
            }
            Geometry::LineString(line) => {
                (vec![line.iter().copied().map(unit).collect()], Vec::new())
            }
            Geometry::Polygon(rings) => {
                let rings = rings_of(rings);
                (rings.clone(), vec![rings])
            }
            Geometry::MultiPolygon(polygons) => {
                let polygons: Vec<_> = polygons.iter().map(|rings| rings_of(rings)).collect();
                (polygons.iter().flatten().cloned().collect(), polygons)
            }
        };
        Shape {
            vertices: lines.iter().flatten().copied().collect(),
            edges: lines
                .iter()
                .flat_map(|line| line.windows(2).map(|pair| (pair[0], pair[1])))
                .collect(),
            polygons,
        }
    }

    fn on_edges(&self, p: Unit) -> bool {
        self.edges.iter().any(|&(a, b)| on_arc(p, a, b))
    }

    /// Inside some polygon: inside its outer ring and outside its holes.
    fn in_polygons(&self, p: Unit) -> bool {
        self.polygons
            .iter()
            .any(|rings| in_ring(p, &rings[0]) && !rings[1..].iter().any(|hole| in_ring(p, hole)))
    }

    fn edge_midpoints(&self) -> Vec<Unit> {
        self.edges
            .iter()
            .map(|&(a, b)| {
                let middle = add(a, b);
                let length = dot(middle, middle).sqrt().max(f64::MIN_POSITIVE);
                [middle[0] / length, middle[1] / length, middle[2] / length]
            })
            .collect()
    }

    fn intersects(&self, other: &Shape) -> bool {
        let crossing = self
            .edges
            .iter()
            .any(|&(a, b)| other.edges.iter().any(|&(c, d)| arcs_cross(a, b, c, d)));
        let touching = |one: &Shape, two: &Shape| {
            one.vertices.iter().any(|&p| {
                two.on_edges(p)
                    || two.in_polygons(p)
                    || two.vertices.iter().any(|&q| angle(p, q) <= ANGLE_EPSILON)
            })
        };
        crossing || touching(self, other) || touching(other, self)
    }
}

fn point_distance(geodesic: &Geodesic, a: Unit, b: Unit) -> f64 {
    let ((lon1, lat1), (lon2, lat2)) = (degrees(a), degrees(b));
    geodesic.inverse(lat1, lon1, lat2, lon2)
}

/// The geodesic distance from `point` to the nearest point of the geodesic from `start` to
/// `end`, by golden-section search along the edge (the distance has one minimum along an edge
/// shorter than half the globe; the ends are compared too).
fn edge_distance(geodesic: &Geodesic, point: Unit, start: Unit, end: Unit) -> f64 {
    let ((lon0, lat0), (lon1, lat1), (lon2, lat2)) = (degrees(point), degrees(start), degrees(end));
    let (length, azimuth, _, _): (f64, f64, f64, f64) = geodesic.inverse(lat1, lon1, lat2, lon2);
    let distance_at = |along: f64| -> f64 {
        let (lat, lon): (f64, f64) = geodesic.direct(lat1, lon1, azimuth, along);
        geodesic.inverse(lat0, lon0, lat, lon)
    };
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut low, mut high) = (0.0, length);
    for _ in 0..NEAREST_POINT_STEPS {
        let left = high - ratio * (high - low);
        let right = low + ratio * (high - low);
        if distance_at(left) < distance_at(right) {
            high = right;
        } else {
            low = left;
        }
    }
    distance_at((low + high) / 2.0)
        .min(distance_at(0.0))
        .min(distance_at(length))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn point(longitude: f64, latitude: f64) -> Value {
        json!({"type": "Point", "coordinates": [longitude, latitude]})
    }

    #[test]
    fn distances_are_geodesic_meters() {
        let near =
            distance(Some(&point(20.0, 20.0)), Some(&point(20.1, 20.0))).expect("a distance");
        // 0.1 degree of longitude at 20 degrees north is about 10.46 km on WGS-84.
        assert!((near - 10_465.0).abs() < 10.0, "{near}");
        assert_eq!(
            distance(Some(&point(100.0, 100.0)), Some(&point(20.0, 20.0))),
            None,
            "an invalid point has no distance"
        );
    }

    #[test]
    fn validity_names_the_fault() {
        assert_eq!(is_valid(Some(&point(10.0, 10.0))), json!(true));
        for (geometry, reason) in [
            (point(181.0, 0.0), "longitude"),
            (
                json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}),
                "does not end where it starts",
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}),
                "at least 4",
            ),
            (
                json!({"type": "Circle", "coordinates": [0, 0]}),
                "not one of",
            ),
        ] {
            let detailed = is_valid_detailed(Some(&geometry));
            assert_eq!(detailed["valid"], json!(false), "{geometry}");
            assert!(
                detailed["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(reason)),
                "{detailed}"
            );
        }
    }

    #[test]
    fn areas_are_geodesic_square_meters() {
        // A 1-degree square at the equator is about 12,308 km² on WGS-84.
        let square =
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]});
        let square_meters = area(Some(&square))
            .and_then(|v| v.as_f64())
            .expect("an area");
        assert!(
            (square_meters / 1e6 - 12_308.0).abs() < 5.0,
            "{square_meters}"
        );
        assert_eq!(area(Some(&point(0.0, 0.0))), None);
    }
}
