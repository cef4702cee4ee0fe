//! App settings, as Azure Functions Core Tools gives them: the `Values` of
//! `local.settings.json`, overridden by the process environment; `%NAME%` in a binding
//! option is replaced by the setting `NAME`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::ConfigError;

/// The file Core Tools reads settings from.
pub const LOCAL_SETTINGS_FILE: &str = "local.settings.json";

/// An app's settings.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The `Values` of `local.settings.json` (these go into the worker's environment).
    from_file: BTreeMap<String, String>,
}

impl Settings {
    /// Reads `APP_DIR/local.settings.json` if there is one.
    ///
    /// # Errors
    /// The file exists but is not JSON, or `Values` is not an object of strings.
    pub fn load(app_dir: &Path) -> Result<Settings, ConfigError> {
        let path = app_dir.join(LOCAL_SETTINGS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Settings::default());
            }
            Err(error) => {
                return Err(ConfigError::App(format!(
                    "cannot read {}: {error}",
                    path.display()
                )));
            }
        };
        let document: Value = serde_json::from_str(&text).map_err(|error| {
            ConfigError::App(format!("{} is not valid JSON: {error}", path.display()))
        })?;
        let mut from_file = BTreeMap::new();
        match document.get("Values") {
            None | Some(Value::Null) => {}
            Some(Value::Object(values)) => {
                for (name, value) in values {
                    let value = match value {
                        Value::String(text) => text.clone(),
                        Value::Bool(_) | Value::Number(_) => value.to_string(),
                        other => {
                            return Err(ConfigError::App(format!(
                                "{}: Values.{name} must be a string, not {other}",
                                path.display()
                            )));
                        }
                    };
                    from_file.insert(name.clone(), value);
                }
            }
            Some(_) => {
                return Err(ConfigError::App(format!(
                    "{}: Values must be an object of settings",
                    path.display()
                )));
            }
        }
        Ok(Settings { from_file })
    }

    /// Settings from the given pairs (for apps defined in code).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Settings {
        Settings {
            from_file: pairs.into_iter().collect(),
        }
    }

    /// A setting: the process environment wins over `local.settings.json`.
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.from_file.get(name).cloned())
    }

    /// The file's settings that the process environment does not override: what a worker
    /// process gets added to its inherited environment.
    pub fn worker_environment(&self) -> BTreeMap<String, String> {
        self.from_file
            .iter()
            .filter(|(name, _)| std::env::var_os(name).is_none())
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// Replaces each `%NAME%` in `text` by the setting `NAME`.
    ///
    /// # Errors
    /// A named setting does not exist, or a `%` is not closed.
    pub fn expand(&self, function: &str, text: &str) -> Result<String, ConfigError> {
        let mut expanded = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            expanded.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else {
                return Err(ConfigError::Function {
                    function: function.to_owned(),
                    message: format!("'{text}' has a % without its closing %"),
                });
            };
            let name = &after[..end];
            let value = self.get(name).ok_or_else(|| ConfigError::Setting {
                function: function.to_owned(),
                setting: name.to_owned(),
                message: format!(
                    "is not set (used as %{name}% in '{text}'); add it to {LOCAL_SETTINGS_FILE} Values or the environment"
                ),
            })?;
            expanded.push_str(&value);
            rest = &after[end + 1..];
        }
        expanded.push_str(rest);
        Ok(expanded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_names_expand_from_settings() {
        let settings = Settings::from_pairs([("DB".to_owned(), "shop".to_owned())]);
        assert_eq!(
            settings.expand("f", "%DB%-x").ok().as_deref(),
            Some("shop-x")
        );
        assert_eq!(settings.expand("f", "plain").ok().as_deref(), Some("plain"));
        let missing = settings.expand("f", "%TRIBUTARY_SURELY_UNSET%");
        assert!(
            matches!(missing, Err(ConfigError::Setting { ref setting, .. }) if setting == "TRIBUTARY_SURELY_UNSET")
        );
        assert!(settings.expand("f", "50%").is_err());
    }
}
