//! Behaviours of listings: referrers, tags and the catalog.

use super::{
    ImageOptions, build_artifact, build_image, fresh_repo, must, push_bytes, push_image,
    random_bytes, tag,
};
use crate::digest::Digest;
use crate::media;
use crate::reference::{RepoName, Tag};
use crate::registry::{ListOptions, Registry, collect_list};

/// The artifact type of the first test artifact.
const SIGNATURE: &str = "application/vnd.example.testkit.signature";
/// The artifact type of the second test artifact.
const SBOM: &str = "application/vnd.example.testkit.sbom";

/// Lists the referrers of `subject`, sorted by digest.
async fn referrer_list(
    reg: &dyn Registry,
    repo: &RepoName,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Vec<crate::descriptor::Descriptor> {
    let what = format!("referrers of {subject} (artifactType {artifact_type:?})");
    let mut list = must(
        collect_list(reg.referrers(repo, subject, artifact_type)).await,
        &what,
    );
    list.sort_by(|a, b| a.digest.cmp(&b.digest));
    list
}

/// Two artifacts of different types refer to an image: both are listed
/// with their artifact type and annotations, the filter picks one, a
/// subject nothing refers to has an empty list.
pub async fn referrers(reg: &dyn Registry) {
    let repo = fresh_repo("referrers");
    let subject = push_image(reg, &repo, Some(&tag("subject"))).await;
    let signature = build_artifact(subject.descriptor(), SIGNATURE);
    let sbom = build_artifact(subject.descriptor(), SBOM);
    signature.push(reg, &repo).await;
    sbom.push(reg, &repo).await;

    let all = referrer_list(reg, &repo, subject.digest(), None).await;
    let mut want = [(&signature, SIGNATURE), (&sbom, SBOM)];
    want.sort_by(|a, b| a.0.digest().cmp(b.0.digest()));
    assert_eq!(all.len(), 2, "referrers of the subject: {all:?}");
    for (got, (artifact, artifact_type)) in all.iter().zip(want) {
        assert_eq!(got.digest, *artifact.digest(), "referrer digest");
        assert_eq!(got.media_type, media::OCI_MANIFEST, "referrer media type");
        assert_eq!(
            got.size,
            artifact.manifest.bytes.len() as u64,
            "referrer size"
        );
        assert_eq!(
            got.artifact_type.as_deref(),
            Some(artifact_type),
            "referrer artifactType"
        );
        assert_eq!(
            got.annotations.as_ref(),
            Some(&artifact.annotations),
            "referrer annotations"
        );
    }

    let filtered = referrer_list(reg, &repo, subject.digest(), Some(SBOM)).await;
    let digests: Vec<_> = filtered.iter().map(|d| &d.digest).collect();
    assert_eq!(digests, [sbom.digest()], "referrers filtered by {SBOM}");
    let none = referrer_list(reg, &repo, subject.digest(), Some("application/x-none")).await;
    assert!(none.is_empty(), "a filter nothing matches: {none:?}");

    let unknown = Digest::sha256(&random_bytes(32));
    let empty = referrer_list(reg, &repo, &unknown, None).await;
    assert!(
        empty.is_empty(),
        "referrers of an unknown subject: {empty:?}"
    );
}

/// A manifest whose subject does not exist (yet) is accepted, and listed
/// as a referrer of that subject.
pub async fn referrers_subject_missing(reg: &dyn Registry) {
    let repo = fresh_repo("referrers-subject-missing");
    let subject = build_image(&ImageOptions::default());
    let artifact = build_artifact(subject.descriptor(), SIGNATURE);
    artifact.push(reg, &repo).await;
    let listed = referrer_list(reg, &repo, subject.digest(), None).await;
    let digests: Vec<_> = listed.iter().map(|d| &d.digest).collect();
    assert_eq!(
        digests,
        [artifact.digest()],
        "referrers of a subject not pushed"
    );
    subject.push(reg, &repo, &[]).await;
    let listed = referrer_list(reg, &repo, subject.digest(), None).await;
    assert_eq!(listed.len(), 1, "referrers once the subject is pushed");
}

/// Deleting a referrer takes it out of its subject's referrers.
pub async fn delete_referrer(reg: &dyn Registry) {
    let repo = fresh_repo("delete-referrer");
    let subject = push_image(reg, &repo, None).await;
    let signature = build_artifact(subject.descriptor(), SIGNATURE);
    let sbom = build_artifact(subject.descriptor(), SBOM);
    signature.push(reg, &repo).await;
    sbom.push(reg, &repo).await;
    must(
        reg.delete_manifest(&repo, signature.digest()).await,
        "delete a referrer",
    );
    let left = referrer_list(reg, &repo, subject.digest(), None).await;
    let digests: Vec<_> = left.iter().map(|d| &d.digest).collect();
    assert_eq!(digests, [sbom.digest()], "referrers after deleting one");
}

/// Collects every page of tags, `n` at a time, checking each page.
async fn tags_in_pages(reg: &dyn Registry, repo: &RepoName, n: usize) -> Vec<Tag> {
    let mut all: Vec<Tag> = Vec::new();
    loop {
        let options = ListOptions {
            last: all.last().map(|t| t.as_str().to_owned()),
            n: Some(n),
        };
        let what = format!("tags page after {:?}, n={n}", options.last);
        let page = must(collect_list(reg.tags(repo, &options)).await, &what);
        assert!(page.len() <= n, "{what}: {} tags, more than n", page.len());
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Tags come in lexical order, and pages of `n` after `last` walk
/// through all of them exactly once.
pub async fn tag_pagination(reg: &dyn Registry) {
    let repo = fresh_repo("tag-pagination");
    let names = ["v2", "latest", "v10", "a", "v1", "b-1", "Z"];
    let first = build_image(&ImageOptions::default());
    first.push(reg, &repo, &[tag(names[0])]).await;
    let rest: Vec<Tag> = names[1..].iter().map(|n| tag(n)).collect();
    first.push_manifest(reg, &repo, &rest).await;

    let mut want: Vec<Tag> = names.iter().map(|n| tag(n)).collect();
    want.sort();
    let listed = must(
        collect_list(reg.tags(&repo, &ListOptions::all())).await,
        "tags",
    );
    assert_eq!(listed, want, "tags in lexical order");
    for n in [1, 2, 3, 7, 100] {
        assert_eq!(
            tags_in_pages(reg, &repo, n).await,
            want,
            "tags paged {n} at a time"
        );
    }
    let options = ListOptions {
        last: Some("latest".to_owned()),
        n: Some(2),
    };
    let page = must(
        collect_list(reg.tags(&repo, &options)).await,
        "tags after latest",
    );
    let after = want
        .iter()
        .position(|t| t.as_str() == "latest")
        .unwrap_or(0)
        + 1;
    assert_eq!(page, want[after..after + 2], "two tags after \"latest\"");
}

/// Repositories are listed in lexical order, and pagination walks
/// through them.
pub async fn catalog(reg: &dyn Registry) {
    let base = fresh_repo("catalog");
    let names: Vec<RepoName> = ["c", "a", "b/nested"]
        .iter()
        .map(|leaf| {
            format!("{base}/{leaf}")
                .parse()
                .unwrap_or_else(|e| panic!("testkit: bad repository name: {e}"))
        })
        .collect();
    for repo in &names {
        push_bytes(reg, repo, media::OCTET_STREAM, &random_bytes(16)).await;
    }
    let mut want = names.clone();
    want.sort();

    let all = must(
        collect_list(reg.repositories(&ListOptions::all())).await,
        "repositories",
    );
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "repositories are not in strictly lexical order"
    );
    let ours: Vec<_> = all.iter().filter(|r| want.contains(r)).cloned().collect();
    assert_eq!(ours, want, "the pushed repositories in the catalog");

    // Page through our names one at a time, starting just before them.
    let mut last = base.as_str().to_owned();
    for expected in &want {
        let options = ListOptions {
            last: Some(last.clone()),
            n: Some(1),
        };
        let page = must(
            collect_list(reg.repositories(&options)).await,
            &format!("repositories after {last:?}, n=1"),
        );
        assert_eq!(
            page,
            std::slice::from_ref(expected),
            "repositories after {last:?}"
        );
        last = expected.as_str().to_owned();
    }
}
