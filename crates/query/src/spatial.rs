//! Spatial functions over GeoJSON, on the WGS-84 ellipsoid as Cosmos DB's geography is:
//! `ST_DISTANCE` between points and `ST_AREA` of polygons are geodesic (Karney's algorithms,
//! through `geographiclib-rs`), and `ST_ISVALID` / `ST_ISVALIDDETAILED` check a geometry by
//! Cosmos DB's rules (positions in range, rings closed and long enough).

use geographiclib_rs::{Geodesic, InverseGeodesic, PolygonArea, Winding};
use serde_json::{Map, Value};

use crate::error::QueryError;

/// A position: longitude, latitude (degrees).
type Position = (f64, f64);

/// A geometry this module reads.
enum Geometry {
    Point(Position),
    /// A line (checked, but nothing here measures lines).
    LineString,
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
            Ok(Geometry::LineString)
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

/// `ST_DISTANCE(a, b)` in meters; undefined when either is not a valid geometry.
///
/// # Errors
/// [`QueryError::Invalid`] for two valid geometries other than two points: distances to lines
/// and polygons are not computed.
pub(crate) fn distance(a: Option<&Value>, b: Option<&Value>) -> Result<Option<Value>, QueryError> {
    let (Some(Ok(a)), Some(Ok(b))) = (a.map(parse), b.map(parse)) else {
        return Ok(None);
    };
    match (a, b) {
        (Geometry::Point((lon1, lat1)), Geometry::Point((lon2, lat2))) => {
            let meters: f64 = Geodesic::wgs84().inverse(lat1, lon1, lat2, lon2);
            Ok(serde_json::Number::from_f64(meters).map(Value::Number))
        }
        _ => Err(QueryError::Invalid(
            "ST_DISTANCE is computed between two Points only; Tributary does not measure \
             distances to lines or polygons"
                .to_owned(),
        )),
    }
}

/// `ST_AREA(polygon)` in square meters: the outer rings' geodesic areas less their holes'.
/// Undefined for anything but a valid Polygon or MultiPolygon.
pub(crate) fn area(value: Option<&Value>) -> Option<Value> {
    let polygons = match parse(value?).ok()? {
        Geometry::Polygon(rings) => vec![rings],
        Geometry::MultiPolygon(polygons) => polygons,
        Geometry::Point(_) | Geometry::LineString => return None,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn point(longitude: f64, latitude: f64) -> Value {
        json!({"type": "Point", "coordinates": [longitude, latitude]})
    }

    #[test]
    fn distances_are_geodesic_meters() {
        let near = distance(Some(&point(20.0, 20.0)), Some(&point(20.1, 20.0)))
            .expect("points")
            .and_then(|v| v.as_f64())
            .expect("a distance");
        // 0.1 degree of longitude at 20 degrees north is about 10.46 km on WGS-84.
        assert!((near - 10_465.0).abs() < 10.0, "{near}");
        assert_eq!(
            distance(Some(&point(100.0, 100.0)), Some(&point(20.0, 20.0))).expect("no error"),
            None,
            "an invalid point has no distance"
        );
        let polygon = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]});
        assert!(distance(Some(&point(0.0, 0.0)), Some(&polygon)).is_err());
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
