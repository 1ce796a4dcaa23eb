//! The catalog's product API through its internal router: validation, authorization,
//! keyset pagination, filters, stock adjustments and soft deletion.

use std::collections::HashSet;

use bazaar_contracts::catalog::{
    AdjustStockRequest, CreateProductRequest, ListProductsRequest, Product, ProductsByIdRequest,
    UpdateProductRequest,
};
use bazaar_contracts::events::{ProductCreated, ProductDeleted, ProductUpdated, StockChanged};
use bazaar_contracts::{ErrorCode, Principal};

use crate::support::{TestCatalog, admin, assert_bad_input, customer};

bazaar_testkit::on_every_backend!(
    start = crate::support::TestCatalog::start;
    validation_errors_name_the_field,
    mutations_are_admin_only,
    pagination_is_keyset_and_stable,
    category_filter_and_search,
    adjust_stock_never_goes_below_zero,
    update_and_soft_delete,
);

fn product(name: &str, description: &str, category: &str) -> CreateProductRequest {
    CreateProductRequest {
        name: name.into(),
        description: description.into(),
        category: category.into(),
        price_cents: 999,
        stock: 5,
    }
}

fn list(
    first: i64,
    after: Option<&str>,
    category: Option<&str>,
    search: Option<&str>,
) -> ListProductsRequest {
    ListProductsRequest {
        first,
        after: after.map(Into::into),
        category: category.map(Into::into),
        search: search.map(Into::into),
    }
}

async fn validation_errors_name_the_field(t: &TestCatalog) {
    let c = &t.client;
    let a = admin();
    let base = product("Teapot", "", "kitchen");
    assert!(
        c.create_product(&a, &base).await.is_ok(),
        "an empty description is allowed"
    );
    let cases: Vec<(CreateProductRequest, &str)> = vec![
        (
            CreateProductRequest {
                name: "   ".into(),
                ..base.clone()
            },
            "input.name",
        ),
        (
            CreateProductRequest {
                name: "x".repeat(201),
                ..base.clone()
            },
            "input.name",
        ),
        (
            CreateProductRequest {
                description: "x".repeat(5001),
                ..base.clone()
            },
            "input.description",
        ),
        (
            CreateProductRequest {
                category: "".into(),
                ..base.clone()
            },
            "input.category",
        ),
        (
            CreateProductRequest {
                category: "x".repeat(101),
                ..base.clone()
            },
            "input.category",
        ),
        (
            CreateProductRequest {
                price_cents: -1,
                ..base.clone()
            },
            "input.priceCents",
        ),
        (
            CreateProductRequest {
                price_cents: 2_000_000_001,
                ..base.clone()
            },
            "input.priceCents",
        ),
        (
            CreateProductRequest {
                stock: -1,
                ..base.clone()
            },
            "input.stock",
        ),
        (
            CreateProductRequest {
                stock: 2_000_000_001,
                ..base.clone()
            },
            "input.stock",
        ),
    ];
    for (req, field) in cases {
        assert_bad_input(c.create_product(&a, &req).await, field);
    }
    let p = t.create("Kettle", "kitchen", 1).await;
    let update = |f: fn(&mut UpdateProductRequest)| {
        let mut req = UpdateProductRequest {
            id: p.id.clone(),
            ..Default::default()
        };
        f(&mut req);
        req
    };
    assert_bad_input(
        c.update_product(&a, &update(|r| r.name = Some(" ".into())))
            .await,
        "input.name",
    );
    assert_bad_input(
        c.update_product(&a, &update(|r| r.category = Some("".into())))
            .await,
        "input.category",
    );
    assert_bad_input(
        c.update_product(&a, &update(|r| r.price_cents = Some(-5)))
            .await,
        "input.priceCents",
    );
    assert_bad_input(
        c.adjust_stock(
            &a,
            &AdjustStockRequest {
                id: p.id.clone(),
                delta: 0,
            },
        )
        .await,
        "delta",
    );
    assert_bad_input(c.list(&a, &list(101, None, None, None)).await, "first");
    assert_bad_input(c.list(&a, &list(-1, None, None, None)).await, "first");
    assert_bad_input(
        c.list(&a, &list(10, None, None, Some(&"x".repeat(201))))
            .await,
        "search",
    );
    assert_eq!(t.stock(&p.id).await, 1, "refused changes changed nothing");
}

async fn mutations_are_admin_only(t: &TestCatalog) {
    let c = &t.client;
    let p = t.create("Teapot", "kitchen", 3).await;
    for (who, code) in [
        (customer(), ErrorCode::Forbidden),
        (Principal::anonymous(), ErrorCode::Unauthenticated),
    ] {
        let create = c
            .create_product(&who, &product("Cup", "d", "kitchen"))
            .await;
        let update = c
            .update_product(
                &who,
                &UpdateProductRequest {
                    id: p.id.clone(),
                    ..Default::default()
                },
            )
            .await;
        let adjust = c
            .adjust_stock(
                &who,
                &AdjustStockRequest {
                    id: p.id.clone(),
                    delta: 5,
                },
            )
            .await;
        let delete = c.delete_product(&who, &p.id).await;
        assert_eq!(create.map(|_| ()).unwrap_err().code, code);
        assert_eq!(update.map(|_| ()).unwrap_err().code, code);
        assert_eq!(adjust.map(|_| ()).unwrap_err().code, code);
        assert_eq!(delete.map(|_| ()).unwrap_err().code, code);
        // Reads are public.
        assert_eq!(
            c.product(&who, &p.id).await.unwrap().map(|p| p.stock),
            Some(3)
        );
        assert_eq!(
            c.list(&who, &list(10, None, None, None))
                .await
                .unwrap()
                .total_count,
            1
        );
    }
}

async fn walk(
    t: &TestCatalog,
    category: &str,
    mut between_pages: impl AsyncFnMut(),
) -> Vec<Vec<Product>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = t
            .client
            .list(
                &Principal::anonymous(),
                &list(10, after.as_deref(), Some(category), None),
            )
            .await
            .unwrap();
        after = page.items.last().map(|p| p.id.clone());
        let more = page.has_next_page;
        pages.push(page.items);
        if !more {
            return pages;
        }
        between_pages().await;
    }
}

async fn pagination_is_keyset_and_stable(t: &TestCatalog) {
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(t.create(&format!("Item {i}"), "paged", 1).await.id);
    }
    t.create("Elsewhere", "other", 1).await;
    let sizes = |pages: &[Vec<Product>]| pages.iter().map(Vec::len).collect::<Vec<_>>();
    let ids = |pages: &[Vec<Product>]| {
        pages
            .iter()
            .flatten()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>()
    };

    let pages = walk(t, "paged", async || {}).await;
    assert_eq!(sizes(&pages), [10, 10, 5]);
    assert_eq!(
        ids(&pages),
        created,
        "every product once, in creation order"
    );

    let first = t
        .client
        .list(&admin(), &list(10, None, Some("paged"), None))
        .await
        .unwrap();
    assert!(first.has_next_page);
    assert_eq!(first.total_count, 25);
    let empty = t
        .client
        .list(&admin(), &list(0, None, Some("paged"), None))
        .await
        .unwrap();
    assert!(empty.items.is_empty() && empty.has_next_page && empty.total_count == 25);

    // Inserting while a client pages through neither repeats nor skips anything: new ids
    // sort after every existing one.
    let mut inserted = Vec::new();
    let pages = walk(t, "paged", async || {
        inserted.push(t.create("Late arrival", "paged", 1).await.id)
    })
    .await;
    let seen = ids(&pages);
    assert_eq!(
        seen.len(),
        seen.iter().collect::<HashSet<_>>().len(),
        "no duplicates"
    );
    assert_eq!(seen[..25], created[..], "the original 25 in order");
    assert_eq!(seen[25..], inserted[..], "then the ones added mid-way");
}

async fn category_filter_and_search(t: &TestCatalog) {
    let c = &t.client;
    let a = admin();
    let teapot = c
        .create_product(&a, &product("Blue TEAPOT", "porcelain", "kitchen"))
        .await
        .unwrap();
    let kettle = c
        .create_product(&a, &product("Red Kettle", "Boils WATER fast", "kitchen"))
        .await
        .unwrap();
    let hose = c
        .create_product(&a, &product("Garden Hose", "50% off_sale", "garden"))
        .await
        .unwrap();
    let plain = c
        .create_product(&a, &product("Rake", "50 percent offsale", "garden"))
        .await
        .unwrap();
    let names = async |req: ListProductsRequest| {
        let page = c.list(&Principal::anonymous(), &req).await.unwrap();
        let ids: Vec<String> = page.items.into_iter().map(|p| p.id).collect();
        assert_eq!(
            ids.len() as i64,
            page.total_count,
            "total counts the same filters"
        );
        ids
    };
    assert_eq!(
        names(list(10, None, None, Some("teapot"))).await,
        [teapot.id.as_str()]
    );
    assert_eq!(
        names(list(10, None, None, Some("water"))).await,
        [kettle.id.as_str()],
        "matches descriptions"
    );
    assert_eq!(
        names(list(10, None, Some("garden"), None)).await,
        [hose.id.as_str(), plain.id.as_str()]
    );
    assert_eq!(
        names(list(10, None, Some("kitchen"), Some("red"))).await,
        [kettle.id.as_str()]
    );
    assert_eq!(
        names(list(10, None, Some("garden"), Some("blue"))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(list(10, None, None, Some("%"))).await,
        [hose.id.as_str()],
        "% matches literally"
    );
    assert_eq!(
        names(list(10, None, None, Some("f_s"))).await,
        [hose.id.as_str()],
        "_ matches literally"
    );
    assert_eq!(
        names(list(10, None, None, Some("  "))).await.len(),
        4,
        "blank search is no filter"
    );
    let page = c
        .list(
            &Principal::anonymous(),
            &list(1, Some(&teapot.id), Some("kitchen"), None),
        )
        .await
        .unwrap();
    assert_eq!(page.items, std::slice::from_ref(&kettle));
    assert_eq!(
        (page.has_next_page, page.total_count),
        (false, 2),
        "the total ignores the cursor"
    );
}

async fn adjust_stock_never_goes_below_zero(t: &TestCatalog) {
    let c = &t.client;
    let a = admin();
    let p = t.create("Teapot", "kitchen", 3).await;
    let adjust = async |delta: i64| {
        c.adjust_stock(
            &a,
            &AdjustStockRequest {
                id: p.id.clone(),
                delta,
            },
        )
        .await
    };
    let err = adjust(-5).await.unwrap_err();
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::BadUserInput, Some("delta"))
    );
    assert!(err.message.contains("current stock is 3"), "{err:?}");
    assert_eq!(adjust(-3).await.unwrap().stock, 0);
    assert_eq!(
        adjust(-1).await.unwrap_err().field.as_deref(),
        Some("delta")
    );
    assert_eq!(adjust(7).await.unwrap().stock, 7);
    assert_eq!(
        adjust(2_000_000_000).await.unwrap_err().field.as_deref(),
        Some("delta"),
        "stays an Int"
    );
    assert_eq!(t.stock(&p.id).await, 7);
    let changes: Vec<(i64, i64, String)> = t
        .emitted::<StockChanged>()
        .await
        .into_iter()
        .map(|e| (e.stock, e.delta, e.reason))
        .collect();
    assert_eq!(
        changes,
        [(0, -3, "ADJUSTMENT".into()), (7, 7, "ADJUSTMENT".into())]
    );

    let missing = c
        .adjust_stock(
            &a,
            &AdjustStockRequest {
                id: "nope".into(),
                delta: 1,
            },
        )
        .await;
    assert_eq!(missing.unwrap_err().code, ErrorCode::NotFound);
    assert!(c.delete_product(&a, &p.id).await.unwrap());
    assert_eq!(
        adjust(1).await.unwrap_err().code,
        ErrorCode::NotFound,
        "deleted products are not restocked"
    );
}

async fn update_and_soft_delete(t: &TestCatalog) {
    let c = &t.client;
    let a = admin();
    let p = t.create("Teapot", "kitchen", 3).await;
    let req = UpdateProductRequest {
        id: p.id.clone(),
        name: Some("  Big Teapot ".into()),
        ..Default::default()
    };
    let updated = c.update_product(&a, &req).await.unwrap();
    assert_eq!(updated.name, "Big Teapot", "trimmed");
    assert_eq!(
        (
            updated.price_cents,
            updated.category.as_str(),
            updated.stock
        ),
        (1250, "kitchen", 3),
        "rest kept"
    );
    assert!(updated.updated_at >= p.updated_at);
    let req = UpdateProductRequest {
        id: p.id.clone(),
        price_cents: Some(0),
        ..Default::default()
    };
    assert_eq!(
        c.update_product(&a, &req).await.unwrap().price_cents,
        0,
        "free is a price"
    );

    assert!(c.delete_product(&a, &p.id).await.unwrap());
    assert!(
        !c.delete_product(&a, &p.id).await.unwrap(),
        "a second delete changes nothing"
    );
    assert!(!c.delete_product(&a, "nope").await.unwrap());
    assert_eq!(c.product(&a, &p.id).await.unwrap(), None);
    let live = ProductsByIdRequest {
        ids: vec![p.id.clone(), "nope".into()],
        include_deleted: false,
    };
    assert!(c.products_by_id(&a, &live).await.unwrap().is_empty());
    let all = ProductsByIdRequest {
        include_deleted: true,
        ..live
    };
    let found = c.products_by_id(&a, &all).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].deleted_at.is_some());
    assert_eq!(
        c.list(&a, &list(10, None, None, None))
            .await
            .unwrap()
            .total_count,
        0
    );
    let req = UpdateProductRequest {
        id: p.id.clone(),
        name: Some("Ghost".into()),
        ..Default::default()
    };
    assert_eq!(
        c.update_product(&a, &req).await.unwrap_err().code,
        ErrorCode::NotFound
    );

    let created = t.emitted::<ProductCreated>().await;
    assert_eq!((created.len(), created[0].product.stock), (1, 3));
    let names: Vec<String> = t
        .emitted::<ProductUpdated>()
        .await
        .into_iter()
        .map(|e| e.product.name)
        .collect();
    assert_eq!(names, ["Big Teapot", "Big Teapot"]);
    assert_eq!(
        t.emitted::<ProductDeleted>().await,
        [ProductDeleted {
            product_id: p.id.clone()
        }]
    );
}
