//! Tasks of an experiment: the `[data]` section of a config, and the source / target
//! domains (a class subset each) with their train / validation / test splits.
//!
//! A domain's validation split is the last `validation_size` examples of the official
//! training split after class filtering (the files' order is fixed, so the split is
//! reproducible); the rest is its training split. With `resplit_seed`, each domain's
//! official training and test images are first pooled and dealt again at random (the test
//! split keeps its official size): train and test then come from one distribution, which
//! the official files of MNIST are not (docs/DEEP_MODELS.md, "Where the drift comes from").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::{Binarization, DatasetKind, ImageDataset, Split, inspect::load_dataset};

/// How images are turned into model inputs (the config-level choice; the seed of
/// dynamic binarisation comes from the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BinarizationKind {
    /// Grey levels in [0, 1].
    None,
    /// Threshold at 1/2.
    Static,
    /// Bernoulli(p / 255) afresh each epoch (seeded).
    Dynamic,
}

impl BinarizationKind {
    /// The binarisation of a run with `seed`.
    pub fn with_seed(self, seed: u64) -> Binarization {
        match self {
            BinarizationKind::None => Binarization::None,
            BinarizationKind::Static => Binarization::Static,
            BinarizationKind::Dynamic => Binarization::Dynamic { seed },
        }
    }
}

/// The `[data]` section of a deep experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset family (`"mnist"` or `"cifar10"`).
    pub kind: DatasetKind,
    /// Folder with the official files; default: the bundled subset. `--data-dir` overrides.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Classes of the source task.
    pub source_classes: Vec<u8>,
    /// Classes of the target task (transfer experiments).
    #[serde(default)]
    pub target_classes: Option<Vec<u8>>,
    /// Examples per domain held out of the training split as validation (probe) set.
    #[serde(default = "default_validation")]
    pub validation_size: usize,
    /// Keep at most this many training examples per domain (after the hold-out).
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Keep at most this many test examples per domain.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// Pool each domain's official training and test images and deal them again with this
    /// seed (the test split keeps its official size); absent: the official splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resplit_seed: Option<u64>,
    /// Binarisation of the inputs.
    #[serde(default = "default_binarization")]
    pub binarization: BinarizationKind,
}

fn default_validation() -> usize {
    500
}
fn default_binarization() -> BinarizationKind {
    BinarizationKind::Dynamic
}

impl DataConfig {
    /// The binarisation of a run with `seed`.
    pub fn binarization(&self, seed: u64) -> Binarization {
        self.binarization.with_seed(seed)
    }

    /// The data folder: `override_dir` (`--data-dir`), else `dir`, else the bundled subset.
    pub fn resolve_dir(&self, override_dir: Option<&Path>) -> Result<PathBuf, DataError> {
        if let Some(d) = override_dir {
            return Ok(d.to_path_buf());
        }
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        match self.kind {
            DatasetKind::Mnist => crate::bundled_mnist_dir(),
            DatasetKind::Cifar10 => crate::bundled_cifar_dir(),
        }
    }
}

/// Which split of a domain a fixed evaluation set (a "probe") is drawn from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeSplit {
    /// The held-out validation split: C generalises, but the equilibrium functionals are
    /// only estimated.
    #[default]
    Validation,
    /// The first examples of the training split: the functionals the objective (and so the
    /// equilibrium surface and its sensitivities) is defined on.
    Train,
}

impl ProbeSplit {
    /// Words for tables and logs.
    pub fn describe(self) -> &'static str {
        match self {
            ProbeSplit::Validation => "held-out",
            ProbeSplit::Train => "training",
        }
    }
}

/// One task's splits.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Classes.
    pub classes: Vec<u8>,
    /// Training examples (the hold-out removed).
    pub train: Arc<ImageDataset>,
    /// Held-out part of the training split.
    pub validation: ImageDataset,
    /// Official test split.
    pub test: ImageDataset,
}

impl Domain {
    /// The first `size` examples of the split that `split` names.
    pub fn probe(&self, split: ProbeSplit, size: usize) -> ImageDataset {
        match split {
            ProbeSplit::Validation => self.validation.take(size),
            ProbeSplit::Train => self.train.take(size),
        }
    }
}

/// Source and (optional) target domains of an experiment.
#[derive(Debug, Clone)]
pub struct Domains {
    /// Folder the data came from.
    pub dir: PathBuf,
    /// The source task.
    pub source: Domain,
    /// The target task, where configured.
    pub target: Option<Domain>,
}

impl Domains {
    /// The target domain, or the source where none is configured.
    pub fn target_or_source(&self) -> &Domain {
        self.target.as_ref().unwrap_or(&self.source)
    }

    /// The target domain, or an error saying the experiment needs one.
    pub fn require_target(&self) -> Result<&Domain, DataError> {
        self.target
            .as_ref()
            .ok_or_else(|| DataError::InvalidArgument {
                reason: "this experiment needs [data] target_classes (for example [5, 6, 7, 8, 9])"
                    .into(),
            })
    }

    /// The last component of the data folder (for plot titles).
    pub fn dir_name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Loads the source (and target) domains of `cfg` from `override_dir`, the configured
    /// folder or the bundled subset.
    pub fn load(cfg: &DataConfig, override_dir: Option<&Path>) -> Result<Self, DataError> {
        let dir = cfg.resolve_dir(override_dir)?;
        let train_all = load_dataset(cfg.kind, &dir, Split::Train)?;
        let test_all = load_dataset(cfg.kind, &dir, Split::Test)?;
        let source = domain("source", &cfg.source_classes, &train_all, &test_all, cfg)?;
        let target = match &cfg.target_classes {
            Some(classes) => Some(domain("target", classes, &train_all, &test_all, cfg)?),
            None => None,
        };
        Ok(Domains {
            dir,
            source,
            target,
        })
    }
}

fn invalid(reason: String) -> DataError {
    DataError::InvalidArgument { reason }
}

fn domain(
    name: &'static str,
    classes: &[u8],
    train_all: &ImageDataset,
    test_all: &ImageDataset,
    cfg: &DataConfig,
) -> Result<Domain, DataError> {
    if classes.is_empty() {
        return Err(invalid(format!("[data] {name}_classes is empty")));
    }
    if let Some(&bad) = classes
        .iter()
        .find(|&&c| usize::from(c) >= train_all.num_classes())
    {
        return Err(invalid(format!(
            "[data] {name}_classes contains {bad}, but the dataset has {} classes",
            train_all.num_classes()
        )));
    }
    let (train, test) = match cfg.resplit_seed {
        None => (
            train_all.filter_classes(classes),
            test_all.filter_classes(classes),
        ),
        Some(seed) => resplit(
            &train_all.filter_classes(classes),
            &test_all.filter_classes(classes),
            seed,
        )?,
    };
    let hold = cfg.validation_size.min(train.len() / 2);
    let cut = train.len() - hold;
    let validation = train.select(&(cut..train.len()).collect::<Vec<_>>())?;
    let mut train = train.select(&(0..cut).collect::<Vec<_>>())?;
    if let Some(limit) = cfg.train_limit {
        train = train.take(limit);
    }
    let test = match cfg.test_limit {
        Some(limit) => test.take(limit),
        None => test,
    };
    if train.is_empty() || test.is_empty() || validation.is_empty() {
        return Err(invalid(format!(
            "{name} domain (classes {classes:?}) is too small: {} train, {} validation, {} test examples",
            train.len(),
            validation.len(),
            test.len()
        )));
    }
    Ok(Domain {
        classes: classes.to_vec(),
        train: Arc::new(train),
        validation,
        test,
    })
}

/// The images of `train` and `test` pooled and dealt again by a permutation seeded with
/// `seed`: `test.len()` of them form the test split, the rest (in permuted order) the
/// training split.
fn resplit(
    train: &ImageDataset,
    test: &ImageDataset,
    seed: u64,
) -> Result<(ImageDataset, ImageDataset), DataError> {
    use rand::seq::SliceRandom;
    let pooled = ImageDataset::new(
        crate::Split::Train,
        train.shape(),
        [train.images(), test.images()].concat(),
        [train.labels(), test.labels()].concat(),
        train.class_names().to_vec(),
    )?;
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.shuffle(&mut crate::binarize::keyed_rng(seed, 0, 0, *b"resplit "));
    let (to_test, to_train) = order.split_at(test.len());
    let new_test = pooled.select(to_test)?.with_split(crate::Split::Test);
    Ok((pooled.select(to_train)?, new_test))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<DataConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn data_config_reads_the_documented_names() {
        let cfg = config(
            "kind = \"mnist\"\nsource_classes = [0, 1]\ntarget_classes = [2]\nbinarization = \"static\"",
        )
        .expect("valid section");
        assert_eq!(cfg.kind, DatasetKind::Mnist);
        assert_eq!(cfg.binarization(3), Binarization::Static);
        assert_eq!(cfg.validation_size, 500);
        let dynamic = config("kind = \"cifar10\"\nsource_classes = [0]").expect("valid");
        assert_eq!(dynamic.binarization(9), Binarization::Dynamic { seed: 9 });
        assert!(config("kind = \"svhn\"\nsource_classes = [0]").is_err());
        assert!(config("kind = \"mnist\"\nsource_classes = [0]\nvalidation = 3").is_err());
    }

    #[test]
    fn domains_split_the_bundled_subset_without_overlap() {
        let cfg = config(
            "kind = \"mnist\"\nsource_classes = [0, 1, 2, 3, 4]\ntarget_classes = [5, 6, 7, 8, 9]\nvalidation_size = 100\ntest_limit = 50",
        )
        .expect("valid");
        let d = Domains::load(&cfg, None).expect("bundled subset loads");
        assert_eq!(d.source.validation.len(), 100);
        assert_eq!(d.source.test.len(), 50);
        let target = d.require_target().expect("configured");
        assert!(target.train.labels().iter().all(|&y| y >= 5));
        assert!(d.source.train.labels().iter().all(|&y| y < 5));
        assert_eq!(d.source.probe(ProbeSplit::Validation, 10).len(), 10);
        let no_target = Domains {
            target: None,
            ..d.clone()
        };
        assert!(no_target.require_target().is_err());
        let bad = DataConfig {
            source_classes: vec![12],
            ..cfg
        };
        let err = Domains::load(&bad, None).expect_err("class 12 does not exist");
        assert!(err.to_string().contains("12"), "{err}");
    }

    #[test]
    fn resplit_deals_the_pooled_images_again_with_the_official_test_size() {
        let text = "kind = \"mnist\"\nsource_classes = [0, 1, 2, 3, 4]\nvalidation_size = 100";
        let official = Domains::load(&config(text).expect("valid"), None).expect("bundled subset");
        let cfg = config(&format!("{text}\nresplit_seed = 7")).expect("valid");
        let a = Domains::load(&cfg, None).expect("resplit");
        let b = Domains::load(&cfg, None).expect("resplit again");
        let (o, r) = (&official.source, &a.source);
        assert_eq!(r.test.len(), o.test.len());
        assert_eq!(r.test.split(), Split::Test);
        assert_eq!(
            r.train.len() + r.validation.len(),
            o.train.len() + o.validation.len()
        );
        // the same images in all, dealt differently; the same seed deals the same way
        let images = |d: &Domain| {
            let mut all: Vec<&[u8]> = [&*d.train, &d.validation, &d.test]
                .iter()
                .flat_map(|s| s.images().chunks(s.image_len()))
                .collect();
            all.sort();
            all.into_iter().flatten().copied().collect::<Vec<u8>>()
        };
        assert_eq!(images(r), images(o));
        assert_ne!(r.test.images(), o.test.images());
        assert_eq!(r.test.images(), b.source.test.images());
        // some official training images now test, some test images now train
        let official_test: std::collections::HashSet<&[u8]> =
            o.test.images().chunks(o.test.image_len()).collect();
        let moved = r
            .test
            .images()
            .chunks(r.test.image_len())
            .filter(|x| !official_test.contains(x))
            .count();
        assert!(
            moved > r.test.len() / 2,
            "{moved} of {} test images came from the training file",
            r.test.len()
        );
    }
}
