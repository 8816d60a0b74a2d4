// Public API of the data module.
export type { Dataset, DatasetName, Split } from './types.js';
export { DATASET_NAMES } from './types.js';
export {
  checkLabels, isGzip, maybeGunzip, parseIdx, parseIdxHeader, peekIdxHeader, readIdxFile, readIdxImages, readIdxLabels,
  type IdxArray, type IdxHeader, type IdxKind,
} from './idx.js';
export {
  CIFAR10_CLASSES, CIFAR_META_FILE, CIFAR_RECORD_BYTES, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES,
  CIFAR_PY_META_FILE, CIFAR_PY_TEST_FILE, CIFAR_PY_TRAIN_FILES,
  checkCifarBin, loadCifarBinDir, loadCifarPyDir, parseCifarBin, readCifarBinFiles, readCifarMeta, readCifarPyBatch, readCifarPyMeta,
} from './cifar.js';
export { PyTuple, isNdArray, restrictedUnpickle, type NdArray } from './pickle.js';
export {
  CIFAR_PY_DIR, CLASS_NAMES, DATASET_SUBDIRS, FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_DIR, IDX_FILES, MNIST_CLASSES,
  candidateDirs, findDatasets, loadDataset, locateDataset, projectRoot,
  type DatasetStatus, type LoadDatasetOptions, type SearchedPlace,
} from './datasets.js';
export {
  Rng, deriveSeed, headOf, holdOut, mixSeed, permutation, resolveSizes, shuffleInPlace, splitTrainingSet, takeIndices,
  type SplitOptions, type SplitSizes, type Subset, type TrainSplits,
} from './splits.js';
export {
  NORMALIZATION, UNIT_SCALE, arrayBatches, batches, countBatches, cropImage, cutoutImage, cutoutRect, dartsAugment,
  flipImage, gatherInto, normalize, padTo, randomCrop, randomCutout, randomFlip, replicateChannels,
  type ArrayBatch, type AugmentOptions, type BatchOptions, type Normalization, type TensorBatch,
} from './batches.js';
export { evaluateSplit } from './evaluate.js';
